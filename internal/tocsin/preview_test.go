package tocsin_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func TestCoverageNamesTheProvidersAScopeReaches(t *testing.T) {
	e := mustService(t, filedAt)
	for _, tt := range []struct {
		scope []string
		want  []string
	}{
		{[]string{"440106"}, []string{"cmcc", "cucc"}},
		{[]string{"450000"}, []string{"cmcc", "ctcc"}},
		{[]string{"440100", "450100"}, []string{"cmcc", "cucc", "ctcc"}},
		{[]string{"110000"}, nil},
	} {
		reach, err := e.svc.Coverage(context.Background(), tt.scope)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range reach {
			got = append(got, r.Provider)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tt.want))
		if !slices.Equal(got, want) {
			t.Errorf("Coverage(%v) = %v, want %v", tt.scope, got, want)
		}
	}
}

func TestCheckFilingRefusesAsFileDoesAndFilesNothing(t *testing.T) {
	e := mustService(t, filedAt)
	a := actor(t, "gd-met")
	f := emergency("Typhoon", "440100", "440100")
	checked, err := e.svc.CheckFiling(a, f)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(checked.Scope, []string{"440100"}) {
		t.Errorf("checked scope = %v, want the region once, as File stores it", checked.Scope)
	}
	if n := len(e.outbox(t)); n != 0 {
		t.Errorf("checking a filing queued %d dispatches", n)
	}
	if p, err := e.svc.List(context.Background(), a, tocsin.Query{}); err != nil || len(p.Broadcasts) != 0 {
		t.Errorf("checking a filing filed %d (%v)", len(p.Broadcasts), err)
	}
	_, err = e.svc.CheckFiling(a, emergency("Typhoon", "450100")) // Guangxi: not gd-met's province
	wantCode(t, err, tocsin.CodeForbidden)
	_, err = e.svc.CheckFiling(a, emergency("Typhoon"))
	wantCode(t, err, tocsin.CodeValidation)
}
