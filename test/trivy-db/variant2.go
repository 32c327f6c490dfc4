package main

import "time"

// content is what one DB variant holds.
type content struct {
	advisories      []advisory
	vulnerabilities map[string]vulnerability
	updatedAt       time.Time
}

// variants are the DBs -variant picks. Variant 1 is main.go's tables as
// they are; variant 2 is derived from it, so the two differ only in what
// variant2 changes.
var variants = map[int]content{
	1: {advisories: advisories, vulnerabilities: vulnerabilities, updatedAt: updatedAt},
	2: variant2(),
}

// Debian advisories are keyed by SOURCE package (Trivy looks them up by
// SrcName and compares the FixedVersion with the source version), and a
// finding is reported under the binary package's name and version. bash
// is both source and binary in the bookworm minbase image, installed from
// source version 5.2.15-2 (the binary's version may carry a binNMU suffix,
// e.g. 5.2.15-2+b7, which Trivy reports as the installed version).
const (
	// One Debian security revision above the installed bash source: Trivy
	// reports a fixable finding. Made up, like the tar one of variant 1.
	bashFixedVersion = "5.2.15-2+deb12u1"
	// The tar source version installed in the minbase image: the advisory is
	// now fixed in the version the image already has, so the finding goes.
	tarInstalledVersion = "1.34+dfsg-1.2+deb12u1"
)

// variant2 is variant 1 a day later: the Debian tracker published a fix
// for bash's CVE-2022-3715 (HIGH, fixable: the rescan introduces it),
// re-dated the tar fix to the version the image has (the rescan resolves
// CVE-2019-9923), and UpdatedAt moved (the rescan trigger). Everything else
// — apt, zlib, lodash — is unchanged, so a rescan must not report it.
func variant2() content {
	c := content{updatedAt: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), vulnerabilities: map[string]vulnerability{}}
	for _, a := range advisories {
		if a.bucket == debian12 && a.pkg == "tar" && a.id == "CVE-2019-9923" {
			a.value.FixedVersion = tarInstalledVersion
		}
		c.advisories = append(c.advisories, a)
	}
	c.advisories = append(c.advisories, advisory{debian12, "bash", "CVE-2022-3715", advisoryValue{FixedVersion: bashFixedVersion}})
	for id, v := range vulnerabilities {
		c.vulnerabilities[id] = v
	}
	c.vulnerabilities["CVE-2022-3715"] = vulnerability{
		Title:          "bash: a heap-buffer-overflow in valid_parameter_transform",
		Description:    "A flaw was found in the bash package, where a heap-buffer overflow can occur in valid_parameter_transform. This issue may lead to memory problems.",
		Severity:       "HIGH",
		CweIDs:         []string{"CWE-787"},
		VendorSeverity: map[string]int{"nvd": sevHigh},
		CVSS: map[string]cvss{"nvd": {
			V3Vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", V3Score: 7.8,
		}},
		References: []string{
			"https://bugzilla.redhat.com/show_bug.cgi?id=2126720",
			"https://lists.gnu.org/archive/html/bug-bash/2022-08/msg00147.html",
			"https://nvd.nist.gov/vuln/detail/CVE-2022-3715",
			"https://security-tracker.debian.org/tracker/CVE-2022-3715",
		},
		PublishedDate:    date("2023-01-05T15:15:00Z"),
		LastModifiedDate: date("2023-05-03T12:16:00Z"),
	}
	return c
}
