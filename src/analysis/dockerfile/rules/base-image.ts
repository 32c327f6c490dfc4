import { chain, type Stage } from '../model.js';
import { hasOpt, optValue, osInstall, osRemove, packageArgs } from '../packages.js';
import { MB } from '../types.js';
import { imageParts, isOfficial, quoteList, type Finding, type Rule } from './rule.js';

/** Tags we suggest when a base image has none: current, maintained lines. */
const SUGGESTED_TAGS: Record<string, string> = {
  ubuntu: '24.04',
  debian: 'bookworm-slim',
  alpine: '3.20',
  node: '22-slim',
  python: '3.12-slim',
  golang: '1.23',
  nginx: '1.27-alpine',
  redis: '7-alpine',
  postgres: '16-alpine',
  'eclipse-temurin': '21-jre',
  ruby: '3.3-slim',
  rust: '1-slim',
  busybox: '1.36',
  php: '8.3-fpm-alpine',
  maven: '3.9-eclipse-temurin-21',
  httpd: '2.4',
  fedora: '40',
};

/** External base images (not `scratch`, not an earlier stage, fully known). */
function externalBases(stages: Stage[]): Stage[] {
  return stages.filter((s) => !s.base && s.imageResolved && s.image !== 'scratch' && s.image !== '');
}

const withImage = (stage: Stage, image: string) => stage.from.text.replace(stage.from.args[0] ?? '', image);

function tagRule(id: string, refs: string[], title: string, test: (tag: string | null) => boolean): Rule {
  return {
    id,
    refs,
    severity: 'warning',
    title,
    check(ctx) {
      return externalBases(ctx.model.stages).flatMap((s): Finding[] => {
        const { name, repo, tag, digest } = imageParts(s.image);
        if (digest || !test(tag)) return [];
        const suggested = `${name}:${SUGGESTED_TAGS[repo] ?? '<version>'}`;
        return [
          {
            instr: s.from,
            detail:
              `\`${s.image}\` follows whatever \`latest\` points to on build day: builds ` +
              `are not reproducible and a new major version can arrive unannounced.`,
            fix: `${withImage(s, suggested)}\n# better still, pin the digest too: ${suggested}@sha256:<digest>`,
          },
        ];
      });
    },
  };
}

const untagged = tagRule('base-image-untagged', ['DL3006', 'DS001'], 'Base image without a tag', (tag) => tag === null);
const latest = tagRule('base-image-latest', ['DL3007', 'DS001'], 'Base image tagged latest', (tag) => tag === 'latest');

interface Sdk {
  runtime: string;
  savings: number;
  artifact: string;
}

function sdkOf(image: string): Sdk | null {
  const { repo, tag } = imageParts(image);
  const t = tag ?? '';
  if (isOfficial(image, 'golang'))
    return { runtime: 'gcr.io/distroless/static-debian12:nonroot', savings: 800 * MB, artifact: '/out/app /app' };
  if (isOfficial(image, 'rust'))
    return { runtime: 'gcr.io/distroless/cc-debian12:nonroot', savings: 1400 * MB, artifact: '/app/target/release/app /app' };
  if (isOfficial(image, 'maven', 'gradle'))
    return { runtime: 'eclipse-temurin:21-jre', savings: 400 * MB, artifact: '/app/target/*.jar /app/app.jar' };
  if (isOfficial(image, 'openjdk', 'eclipse-temurin', 'amazoncorretto', 'ibm-semeru-runtimes') && !/jre/.test(t)) {
    const version = /^\d+/.exec(t)?.[0] ?? '21';
    return { runtime: `eclipse-temurin:${version}-jre`, savings: 200 * MB, artifact: '/app/target/*.jar /app/app.jar' };
  }
  if (repo === 'dotnet/sdk')
    return { runtime: `mcr.microsoft.com/dotnet/aspnet:${t || '8.0'}`, savings: 500 * MB, artifact: '/app/publish /app' };
  return null;
}

const sdkFinal: Rule = {
  id: 'sdk-base-in-final-stage',
  refs: [],
  severity: 'warning',
  title: 'Final image built on a full SDK image',
  check(ctx) {
    const final = ctx.model.final;
    if (!final) return [];
    const root = chain(final).at(-1)!;
    const sdk = root.imageResolved ? sdkOf(root.image) : null;
    if (!sdk) return [];
    return [
      {
        instr: final.from,
        detail:
          `The shipped image is based on \`${root.image}\`, a compiler ` +
          `toolchain. The application needs only its build output and a runtime.`,
        fix: `FROM ${root.image} AS build\n# ... the existing build steps ...\nFROM ${sdk.runtime}\nCOPY --from=build ${sdk.artifact}`,
        savings: sdk.savings,
      },
    ];
  },
};

const FULL_VARIANTS: Record<string, number> = { python: 850 * MB, node: 800 * MB, ruby: 700 * MB, debian: 45 * MB };

function slimTag(repo: string, tag: string | null): string {
  if (!tag || tag === 'latest') return 'slim';
  const distro = /^(.*)-(bookworm|bullseye|buster|trixie)$/.exec(tag);
  if (distro && (repo === 'python' || repo === 'ruby')) return `${distro[1]}-slim-${distro[2]}`;
  return `${tag}-slim`;
}

const fullVariant: Rule = {
  id: 'base-image-full-variant',
  refs: [],
  severity: 'warning',
  title: 'Full base image where a slim variant exists',
  check(ctx) {
    const final = ctx.model.final;
    if (!final) return [];
    const root = chain(final).at(-1)!;
    const { name, repo, tag, digest } = imageParts(root.image);
    if (
      !root.imageResolved ||
      digest ||
      !isOfficial(root.image, ...Object.keys(FULL_VARIANTS)) ||
      /slim|alpine|windows|nanoserver/.test(tag ?? '')
    )
      return [];
    const slim = `${name}:${slimTag(repo, tag)}`;
    return [
      {
        instr: root.from,
        detail:
          `\`${root.image}\` carries compilers, headers and docs the ` + `application does not run with; \`${slim}\` has the same runtime.`,
        fix: withImage(root, slim),
        savings: FULL_VARIANTS[repo]!,
      },
    ];
  },
};

const TOOLCHAIN =
  /^(gcc|g\+\+|gcc-c\+\+|make|cmake|build-essential|build-base|clang|llvm|autoconf|automake|libtool|pkg-config|pkgconf|gfortran|musl-dev|libc6?-dev|linux-headers|golang|rustc|cargo|nasm)$/;
const DEV_PACKAGE = /-(dev|devel)$/;
const HEAVY = /^(gcc|g\+\+|gcc-c\+\+|build-essential|build-base|clang|llvm|golang|rustc|cargo|gfortran|cmake)$/;

const buildTools: Rule = {
  id: 'build-tools-in-final-stage',
  refs: [],
  severity: 'warning',
  title: 'Build toolchain installed in the final image',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.finalImageStages()) {
      for (const instr of ctx.runs(stage)) {
        const invs = ctx.invocations(instr);
        // Tools installed and removed in the same RUN (apk --virtual + apk del, apt-get purge) never reach a layer.
        const removed = new Set(invs.filter(osRemove).flatMap((i) => i.args));
        const tools = invs
          .filter(osInstall)
          .filter((i) => !(hasOpt(i, '-t', '--virtual') && removed.has(optValue(i, '-t', '--virtual') ?? '')))
          .flatMap(packageArgs)
          .map((p) => p.split(/[=<>~]/)[0]!)
          .filter((p) => (TOOLCHAIN.test(p) || DEV_PACKAGE.test(p)) && !removed.has(p));
        if (tools.length === 0) continue;
        const heavy = tools.some((t) => HEAVY.test(t));
        out.push({
          instr,
          detail:
            `${quoteList(tools)} ${tools.length > 1 ? 'are' : 'is'} needed to build, not to run, ` +
            `and ${tools.length > 1 ? 'stay' : 'stays'} in the shipped image, adding size and attack surface.`,
          fix:
            `FROM ${stage.image} AS build\n${instr.text.trim()}\n# ... build steps ...\n\n` +
            `FROM ${stage.image.replace(/:.*$/, '')}:<slim or distroless tag>\nCOPY --from=build /app /app`,
          savings: heavy ? 200 * MB : Math.min(200, tools.length * 20) * MB,
        });
      }
    }
    return out;
  },
};

export const BASE_IMAGE_RULES: Rule[] = [untagged, latest, sdkFinal, fullVariant, buildTools];
