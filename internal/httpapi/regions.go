package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// regionLister lists divisions for pickers; *region.Divisions is one.
type regionLister interface {
	Provinces() []region.Division
	Children(code string) []region.Division
}

// listRegions answers GET /regions?parent=CODE with the divisions directly
// under parent ([{code, name}], by code), or the provinces without parent.
// It is public, like the calendar: the division table is public data, and
// the filing form's region picker reads it.
func (s *Server) listRegions(w http.ResponseWriter, r *http.Request) error {
	lister, ok := s.Regions.(regionLister)
	if !ok {
		return tocsin.Errorf(tocsin.CodeNotFound, "region listing is not available")
	}
	var divs []region.Division
	if parent := r.URL.Query().Get("parent"); parent == "" {
		divs = lister.Provinces()
	} else {
		if s.Regions.Name(parent) == "" {
			return tocsin.Errorf(tocsin.CodeNotFound, "%q is not a GB/T 2260 division code", parent).With("field", "parent")
		}
		divs = lister.Children(parent)
	}
	out := make([]RegionView, len(divs))
	for i, d := range divs {
		out[i] = RegionView{Code: d.Code, Name: d.Name}
	}
	// The table is compiled in: it changes only with a new binary.
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	return json.NewEncoder(w).Encode(out)
}
