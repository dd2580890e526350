package metrics_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/tocsin-dev/tocsin/internal/metrics"
)

// alertsFile is the shipped rule file, relative to this package.
var alertsFile = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")

// ruleFile is the part of Prometheus's rule file format Tocsin uses;
// decoding with KnownFields makes a misspelt key an error, as it is for
// Prometheus.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRules checks deploy/prometheus/alerts.yml without Prometheus:
// its structure, its templates, and above all that every metric it names
// is one Tocsin exports, so renaming a series breaks this test rather than
// silently disarming an alert. (The PromQL itself is checked by promtool,
// which is too large to build in CI; run it by hand after editing:
// go run github.com/prometheus/prometheus/cmd/promtool@v0.316.0 check rules deploy/prometheus/alerts.yml)
func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}

	m := metrics.New()
	exercise(m)
	_, families := scrape(t, m)
	exported := func(name string) bool {
		if families[name] != nil {
			return true
		}
		// A histogram's series are named after it with these suffixes.
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && families[base] != nil {
				return true
			}
		}
		return false
	}
	metricName := regexp.MustCompile(`\btocsin_[a-z0-9_]+`)
	// Prometheus defines these before expanding an annotation, and these
	// are the template functions this file uses.
	const preamble = `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}`
	stub := func(any) string { return "" } // parsing needs the names, not what they do
	funcs := template.FuncMap{"humanize": stub, "humanizeDuration": stub}

	var names []string
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("rule %q: want alert and expr", r.Alert)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for: %v", r.Alert, err)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, key := range []string{"summary", "description"} {
				text := r.Annotations[key]
				if strings.TrimSpace(text) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, key)
					continue
				}
				if _, err := template.New(key).Funcs(funcs).Parse(preamble + text); err != nil {
					t.Errorf("%s: %s: %v", r.Alert, key, err)
				}
			}
			used := metricName.FindAllString(r.Expr+" "+r.Annotations["description"], -1)
			if len(metricName.FindAllString(r.Expr, -1)) == 0 {
				t.Errorf("%s: expr %q names no Tocsin metric", r.Alert, r.Expr)
			}
			for _, name := range used {
				if !exported(name) {
					t.Errorf("%s names %s, which internal/metrics does not export", r.Alert, name)
				}
			}
		}
	}
	for _, want := range []string{
		"TocsinDispatcherDown", "TocsinOutboxStalled", "TocsinLateEmergencyDispatch",
		"TocsinReceiptLag", "TocsinStoreUnwritable", "TocsinNATSDisconnected",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("alerts.yml has no %s (has %v)", want, names)
		}
	}
}
