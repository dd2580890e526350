package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestRegions(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct {
		name       string
		path       string
		status     int
		wantCode   string
		wantName   string
		wantLength int // 0: any
	}{
		{"provinces", "/api/v1/regions", http.StatusOK, "440000", "广东省", 34},
		{"prefectures", "/api/v1/regions?parent=440000", http.StatusOK, "440100", "广州市", 21},
		{"counties", "/api/v1/regions?parent=440100", http.StatusOK, "440106", "天河区", 0},
		{"county has no children", "/api/v1/regions?parent=440106", http.StatusOK, "", "", 0},
		{"unknown parent", "/api/v1/regions?parent=999999", http.StatusNotFound, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := api.get(t, "", tt.path) // public: no token
			if res.Status != tt.status {
				t.Fatalf("GET %s = %s, want %d", tt.path, res, tt.status)
			}
			if tt.status != http.StatusOK {
				return
			}
			var regions []struct{ Code, Name string }
			if err := json.Unmarshal(res.Body, &regions); err != nil {
				t.Fatalf("body is not [{code, name}]: %v\n%s", err, res.Body)
			}
			if tt.wantLength > 0 && len(regions) != tt.wantLength {
				t.Errorf("got %d regions, want %d", len(regions), tt.wantLength)
			}
			if tt.wantCode == "" {
				if len(regions) != 0 {
					t.Errorf("got %v, want none", regions)
				}
				return
			}
			found := false
			for _, r := range regions {
				found = found || (r.Code == tt.wantCode && r.Name == tt.wantName)
			}
			if !found {
				t.Errorf("no {%s %s} in %v", tt.wantCode, tt.wantName, regions)
			}
		})
	}
}
