// Command trivy-test-db writes a tiny, offline Trivy vulnerability database
// for stevedore's tests.
//
// Trivy cannot download its DB in the test environment, so this program
// produces one by hand:
//
//	trivy-test-db -out DIR [-variant 1|2]
//
// writes DIR/db/trivy.db (a bbolt file) and DIR/db/metadata.json, which
// `trivy ... --cache-dir DIR --skip-db-update` then uses as its DB.
//
// Variant 1 (the default) is the DB every test scans with. Variant 2 is
// "the same DB, a day later", for the tests of rescans on a DB change: it
// adds an advisory for bash (in the base image), fixes the tar advisory in
// the version the base image already has (so that finding disappears), and
// has a later UpdatedAt (what the rescan trigger watches). See variant2.go.
//
// The layout targets Trivy v0.74.0 (DB schema 2):
//
//   - "<ecosystem bucket>" / "<package>" / "<vuln ID>" -> advisory JSON
//     OS buckets are "<family> <major version>" ("debian 12") and hold one
//     nested bucket per SOURCE package. Language buckets are
//     "<ecosystem>::<data source name>"; Trivy scans every bucket with
//     the "npm::" prefix for npm packages.
//   - "vulnerability" / "<vuln ID>" -> details (title, CVSS, severity, ...)
//   - "data-source" / "<advisory bucket>" -> {ID, Name, URL}
//
// Advisory fields are written the way the DB stores them: "Status" and
// "Severity" are integers (status 2 = affected, 5 = will_not_fix; severity
// 1 = LOW ... 4 = CRITICAL).
//
// The CVE IDs, descriptions, CVSS vectors and references are real. The
// FixedVersion of the tar advisory is made up: it is set one Debian
// revision above the version in the bookworm minbase image (tar
// 1.34+dfsg-1.2+deb12u1), so that Trivy reports a fixable finding.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the Trivy DB schema that Trivy v0.74 requires
// (metadata.json "Version"; a mismatch makes --skip-db-update fail).
const schemaVersion = 2

// Severity and status numbers as stored in the DB.
const (
	sevLow      = 1
	sevMedium   = 2
	sevHigh     = 3
	sevCritical = 4

	statusAffected   = 2
	statusWillNotFix = 5
)

// Fixed timestamps keep the output reproducible.
var (
	updatedAt  = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	nextUpdate = time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Advisory bucket names.
const (
	debian12 = "debian 12"
	npmGHSA  = "npm::GitHub Security Advisory npm"
)

// dataSources describes where each advisory bucket's data comes from.
// Trivy reports it as "DataSource" and uses its ID to pick a severity.
var dataSources = map[string]dataSource{
	debian12: {ID: "debian", Name: "Debian Security Tracker",
		URL: "https://salsa.debian.org/security-tracker-team/security-tracker"},
	npmGHSA: {ID: "ghsa", Name: "GitHub Security Advisory npm",
		URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Anpm"},
}

type dataSource struct {
	ID   string
	Name string
	URL  string
}

// advisory is one (bucket, package, vuln ID) entry.
type advisory struct {
	bucket, pkg, id string
	value           advisoryValue
}

type advisoryValue struct {
	VendorIDs          []string `json:",omitempty"`
	Status             int      `json:",omitempty"`
	Severity           int      `json:",omitempty"` // package-specific severity (Debian)
	FixedVersion       string   `json:",omitempty"` // OS packages
	VulnerableVersions []string `json:",omitempty"` // language packages
	PatchedVersions    []string `json:",omitempty"`
}

var advisories = []advisory{
	// Unfixed; Debian rates it "unimportant" (LOW).
	{debian12, "apt", "CVE-2011-3374", advisoryValue{Status: statusAffected, Severity: sevLow}},
	// Fixable: the FixedVersion is one revision above the installed tar.
	{debian12, "tar", "CVE-2019-9923", advisoryValue{FixedVersion: "1.34+dfsg-1.2+deb12u2"}},
	// Unfixed CRITICAL; Debian ignores it for bookworm (will_not_fix).
	{debian12, "zlib", "CVE-2023-45853", advisoryValue{Status: statusWillNotFix}},
	// npm: lodash < 4.17.21.
	{npmGHSA, "lodash", "CVE-2021-23337", advisoryValue{
		VendorIDs:          []string{"GHSA-35jh-r3h4-6jhm"},
		VulnerableVersions: []string{"<4.17.21"},
		PatchedVersions:    []string{"4.17.21"},
	}},
}

// vulnerability is the value stored in the "vulnerability" bucket.
type vulnerability struct {
	Title            string
	Description      string
	Severity         string          // legacy field, still read as a last resort
	CweIDs           []string        `json:",omitempty"`
	VendorSeverity   map[string]int  `json:",omitempty"`
	CVSS             map[string]cvss `json:",omitempty"`
	References       []string
	PublishedDate    time.Time
	LastModifiedDate time.Time
}

type cvss struct {
	V2Vector string  `json:",omitempty"`
	V3Vector string  `json:",omitempty"`
	V2Score  float64 `json:",omitempty"`
	V3Score  float64 `json:",omitempty"`
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var vulnerabilities = map[string]vulnerability{
	"CVE-2011-3374": {
		Title:          "apt: apt-key does not correctly validate gpg keys with the master keyring",
		Description:    "It was found that apt-key in apt, all versions, do not correctly validate gpg keys with the master keyring, leading to a potential man-in-the-middle attack.",
		Severity:       "LOW",
		CweIDs:         []string{"CWE-347"},
		VendorSeverity: map[string]int{"debian": sevLow, "nvd": sevLow},
		CVSS: map[string]cvss{"nvd": {
			V2Vector: "AV:N/AC:M/Au:N/C:N/I:P/A:N", V2Score: 4.3,
			V3Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N", V3Score: 3.7,
		}},
		References: []string{
			"https://access.redhat.com/security/cve/cve-2011-3374",
			"https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=642480",
			"https://seclists.org/fulldisclosure/2011/Sep/221",
			"https://security-tracker.debian.org/tracker/CVE-2011-3374",
			"https://ubuntu.com/security/CVE-2011-3374",
		},
		PublishedDate:    date("2019-11-26T00:15:00Z"),
		LastModifiedDate: date("2021-02-09T16:08:00Z"),
	},
	"CVE-2019-9923": {
		Title:          "tar: null-pointer dereference in pax_decode_header in sparse.c",
		Description:    "pax_decode_header in sparse.c in GNU Tar before 1.32 had a NULL pointer dereference when parsing certain archives that have malformed extended headers.",
		Severity:       "HIGH",
		CweIDs:         []string{"CWE-476"},
		VendorSeverity: map[string]int{"nvd": sevHigh},
		CVSS: map[string]cvss{"nvd": {
			V2Vector: "AV:N/AC:L/Au:N/C:N/I:N/A:P", V2Score: 5.0,
			V3Vector: "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", V3Score: 7.5,
		}},
		References: []string{
			"https://nvd.nist.gov/vuln/detail/CVE-2019-9923",
			"https://savannah.gnu.org/bugs/?55369",
			"https://security-tracker.debian.org/tracker/CVE-2019-9923",
		},
		PublishedDate:    date("2019-03-22T08:29:00Z"),
		LastModifiedDate: date("2023-11-07T03:13:00Z"),
	},
	"CVE-2023-45853": {
		Title:          "zlib: integer overflow and resultant heap-based buffer overflow in zipOpenNewFileInZip4_64",
		Description:    "MiniZip in zlib through 1.3 has an integer overflow and resultant heap-based buffer overflow in zipOpenNewFileInZip4_64 via a long filename, comment, or extra field. NOTE: MiniZip is not a supported part of the zlib product. NOTE: pyminizip through 0.2.6 is also vulnerable because it bundles an affected zlib version, and exposes the applicable MiniZip code through its compress API.",
		Severity:       "CRITICAL",
		CweIDs:         []string{"CWE-190"},
		VendorSeverity: map[string]int{"nvd": sevCritical},
		CVSS: map[string]cvss{"nvd": {
			V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", V3Score: 9.8,
		}},
		References: []string{
			"https://github.com/madler/zlib/pull/843",
			"https://nvd.nist.gov/vuln/detail/CVE-2023-45853",
			"https://security-tracker.debian.org/tracker/CVE-2023-45853",
			"https://www.winimage.com/zLibDll/minizip.html",
		},
		PublishedDate:    date("2023-10-14T02:15:09Z"),
		LastModifiedDate: date("2024-12-20T17:41:31Z"),
	},
	"CVE-2021-23337": {
		Title:          "nodejs-lodash: command injection via template",
		Description:    "Lodash versions prior to 4.17.21 are vulnerable to Command Injection via the template function.",
		Severity:       "HIGH",
		CweIDs:         []string{"CWE-77", "CWE-94"},
		VendorSeverity: map[string]int{"ghsa": sevHigh, "nvd": sevHigh},
		CVSS: map[string]cvss{
			"ghsa": {V3Vector: "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", V3Score: 7.2},
			"nvd": {
				V2Vector: "AV:N/AC:L/Au:S/C:P/I:P/A:P", V2Score: 6.5,
				V3Vector: "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", V3Score: 7.2,
			},
		},
		References: []string{
			"https://github.com/advisories/GHSA-35jh-r3h4-6jhm",
			"https://github.com/lodash/lodash/commit/3469357cff396a26c363f8c1b5a91dde28ba4b1c",
			"https://nvd.nist.gov/vuln/detail/CVE-2021-23337",
			"https://snyk.io/vuln/SNYK-JS-LODASH-1040724",
		},
		PublishedDate:    date("2021-02-15T13:15:12Z"),
		LastModifiedDate: date("2022-09-13T21:25:00Z"),
	},
}

// metadata is DIR/db/metadata.json. Trivy only accepts --skip-db-update
// when Version equals its schema version.
type metadata struct {
	Version      int
	NextUpdate   time.Time
	UpdatedAt    time.Time
	DownloadedAt time.Time
}

func main() {
	out := flag.String("out", "", "Trivy cache directory to write (the DB goes to OUT/db)")
	variant := flag.Int("variant", 1, "which DB: 1, or 2 (a later DB: one advisory added, one fixed)")
	flag.Parse()
	c, ok := variants[*variant]
	if *out == "" || !ok || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: trivy-test-db -out DIR [-variant 1|2]")
		os.Exit(2)
	}
	dbDir := filepath.Join(*out, "db")
	if err := writeDB(filepath.Join(dbDir, "trivy.db"), c); err != nil {
		log.Fatalf("write trivy.db: %v", err)
	}
	if err := writeMetadata(filepath.Join(dbDir, "metadata.json"), c.updatedAt); err != nil {
		log.Fatalf("write metadata.json: %v", err)
	}
	fmt.Println(dbDir)
}

func writeDB(path string, c content) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Start from an empty file so re-runs never keep stale entries.
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, a := range c.advisories {
			if err := put(tx, []string{a.bucket, a.pkg}, a.id, a.value); err != nil {
				return err
			}
		}
		for id, v := range c.vulnerabilities {
			if err := put(tx, []string{"vulnerability"}, id, v); err != nil {
				return err
			}
		}
		for bkt, src := range dataSources {
			if err := put(tx, []string{"data-source"}, bkt, src); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// put stores JSON(value) under key in the nested buckets named by path,
// creating the buckets as needed.
func put(tx *bolt.Tx, path []string, key string, value any) error {
	b, err := tx.CreateBucketIfNotExists([]byte(path[0]))
	if err != nil {
		return err
	}
	for _, name := range path[1:] {
		if b, err = b.CreateBucketIfNotExists([]byte(name)); err != nil {
			return err
		}
	}
	data, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func writeMetadata(path string, at time.Time) error {
	data, err := json.Marshal(metadata{
		Version:      schemaVersion,
		NextUpdate:   nextUpdate,
		UpdatedAt:    at,
		DownloadedAt: at,
	})
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
