/**
 * What changed between two scans of the same digest (a rescan after the vulnerability DB
 * moved), and between the packages of two builds of the same tag (their SBOMs). Pure.
 *
 * A finding is the pair (advisory id, package, installed version): the same CVE in two
 * packages is two findings, and an upgraded package that still carries the CVE resolves
 * the old finding and introduces a new one — which is what a reader of the diff expects.
 */
/** The fields of a normalised finding (engines/trivy/trivy-report.ts) a diff needs; structural, so analysis stays pure. */
export interface Vulnerability {
  id: string;
  package: string;
  installed_version: string;
  fixed_version: string | null;
  severity: Severity;
}
type Severity = string;

export interface FindingRef {
  id: string;
  package: string;
  installed_version: string;
  severity: Severity;
  fixed_version: string | null;
}

export interface ScanDiff {
  introduced: FindingRef[];
  resolved: FindingRef[];
  severity_changed: (FindingRef & { previous_severity: Severity })[];
  /** A fix became available (or changed) for a finding present in both. */
  fix_changed: (FindingRef & { previous_fixed_version: string | null })[];
}

const keyOf = (v: { id: string; package: string; installed_version: string }) => `${v.id}\u0000${v.package}\u0000${v.installed_version}`;
const ref = (v: Vulnerability): FindingRef => ({
  id: v.id,
  package: v.package,
  installed_version: v.installed_version,
  severity: v.severity,
  fixed_version: v.fixed_version,
});
const byId = (a: FindingRef, b: FindingRef) => a.id.localeCompare(b.id) || a.package.localeCompare(b.package);

export function diffScans(previous: Vulnerability[], current: Vulnerability[]): ScanDiff {
  const before = new Map(previous.map((v) => [keyOf(v), v]));
  const after = new Map(current.map((v) => [keyOf(v), v]));
  const diff: ScanDiff = { introduced: [], resolved: [], severity_changed: [], fix_changed: [] };
  for (const [key, v] of after) {
    const old = before.get(key);
    if (!old) diff.introduced.push(ref(v));
    else {
      if (old.severity !== v.severity) diff.severity_changed.push({ ...ref(v), previous_severity: old.severity });
      if (old.fixed_version !== v.fixed_version) diff.fix_changed.push({ ...ref(v), previous_fixed_version: old.fixed_version });
    }
  }
  for (const [key, v] of before) if (!after.has(key)) diff.resolved.push(ref(v));
  diff.introduced.sort(byId);
  diff.resolved.sort(byId);
  diff.severity_changed.sort(byId);
  diff.fix_changed.sort(byId);
  return diff;
}

export const isEmptyDiff = (d: ScanDiff) => !d.introduced.length && !d.resolved.length && !d.severity_changed.length;

export interface PackageRef {
  name: string;
  version: string;
  /** purl type or ecosystem (deb, npm, pypi, golang…), to tell same-named packages apart. */
  type: string;
}

export interface PackageDiff {
  added: PackageRef[];
  removed: PackageRef[];
  changed: { name: string; type: string; from: string; to: string }[];
}

/** Packages of two SBOMs compared by (type, name): a new version is a change, not a removal and an addition. */
export function diffPackages(previous: PackageRef[], current: PackageRef[]): PackageDiff {
  const group = (list: PackageRef[]) => {
    const m = new Map<string, string[]>();
    for (const p of list) m.set(`${p.type}\u0000${p.name}`, [...(m.get(`${p.type}\u0000${p.name}`) ?? []), p.version].sort());
    return m;
  };
  const before = group(previous);
  const after = group(current);
  const out: PackageDiff = { added: [], removed: [], changed: [] };
  for (const [key, versions] of after) {
    const [type, name] = key.split('\u0000') as [string, string];
    const old = before.get(key);
    if (!old) versions.forEach((version) => out.added.push({ name, version, type }));
    else if (old.join(',') !== versions.join(',')) out.changed.push({ name, type, from: old.join(','), to: versions.join(',') });
  }
  for (const [key, versions] of before) {
    if (after.has(key)) continue;
    const [type, name] = key.split('\u0000') as [string, string];
    versions.forEach((version) => out.removed.push({ name, version, type }));
  }
  const order = (a: { name: string; type: string }, b: { name: string; type: string }) =>
    a.type.localeCompare(b.type) || a.name.localeCompare(b.name);
  out.added.sort(order);
  out.removed.sort(order);
  out.changed.sort(order);
  return out;
}

/** The packages a CycloneDX SBOM lists (components with a name and version), typed by their purl. */
export function sbomPackages(sbom: unknown): PackageRef[] {
  const components = (sbom as { components?: unknown })?.components;
  if (!Array.isArray(components)) return [];
  const out: PackageRef[] = [];
  for (const c of components as { name?: unknown; version?: unknown; purl?: unknown; type?: unknown }[]) {
    if (typeof c?.name !== 'string' || typeof c.version !== 'string' || !c.version) continue;
    const purlType = typeof c.purl === 'string' ? /^pkg:([a-z0-9.+-]+)\//i.exec(c.purl)?.[1] : undefined;
    out.push({ name: c.name, version: c.version, type: purlType ?? (typeof c.type === 'string' ? c.type : 'unknown') });
  }
  return out;
}
