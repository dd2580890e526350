// Package demo is the fixed demo directory of DESIGN.md: the organisations
// and providers `tocsin demo` seeds, with fixed ids so that examples, checks
// and tests can rely on them, and the web password every demo login shares.
// It is data only; cmd/tocsin seeds it, and internal/testkit seeds it for
// tests.
package demo

import (
	"slices"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Password is every demo organisation's web password.
const Password = "tocsin-demo"

const (
	nat  = tocsin.LevelNational
	prov = tocsin.LevelProvincial
	pref = tocsin.LevelPrefecture
)

func org(id, name, nameZH string, role tocsin.Role, level tocsin.Level, jur, sender string) tocsin.Organisation {
	return tocsin.Organisation{ID: id, Name: name, NameZH: nameZH, Role: role, Level: level, Jurisdiction: jur, SenderCode: sender}
}

// organisations is the directory table of DESIGN.md, with the operator's
// own organisation first and the providers' organisations last.
var organisations = []tocsin.Organisation{
	org("admin", "Tocsin operator", "Tocsin 系统管理员", tocsin.RoleAdmin, nat, tocsin.National, ""),
	org("miit", "Ministry of Industry and Information Technology", "工业和信息化部", tocsin.RoleRegulator, nat, tocsin.National, ""),
	org("gd-cab", "Guangdong Communications Administration", "广东省通信管理局", tocsin.RoleRegulator, prov, "440000", ""),
	org("gx-cab", "Guangxi Communications Administration", "广西壮族自治区通信管理局", tocsin.RoleRegulator, prov, "450000", ""),
	org("mem", "Ministry of Emergency Management", "应急管理部", tocsin.RoleDepartment, nat, tocsin.National, "12379"),
	org("gd-met", "Guangdong Meteorological Service", "广东省气象局", tocsin.RoleDepartment, prov, "440000", "12379440"),
	org("gx-health", "Guangxi Health Commission", "广西壮族自治区卫生健康委员会", tocsin.RoleDepartment, prov, "450000", "12320450"),
	org("gz-em", "Guangzhou Emergency Management Bureau", "广州市应急管理局", tocsin.RoleDepartment, pref, "440100", "12379020"),
	org("cmcc", "China Mobile", "中国移动", tocsin.RoleProvider, nat, tocsin.National, ""),
	org("cucc", "China Unicom", "中国联通", tocsin.RoleProvider, nat, tocsin.National, ""),
	org("ctcc", "China Telecom", "中国电信", tocsin.RoleProvider, nat, tocsin.National, ""),
}

var providers = []tocsin.Provider{
	{ID: "cmcc", Name: "China Mobile", Regions: []string{"440000", "450000"}},
	{ID: "cucc", Name: "China Unicom", Regions: []string{"440000"}},
	{ID: "ctcc", Name: "China Telecom", Regions: []string{"450000"}},
}

// Organisations returns the demo organisations: the operator, the
// regulators, the departments and the providers' organisations. The slice
// is the caller's own.
func Organisations() []tocsin.Organisation { return slices.Clone(organisations) }

// Providers returns the demo providers and the regions each covers. The
// slices, Regions included, are the caller's own (storing a provider
// normalises its Regions in place).
func Providers() []tocsin.Provider {
	out := slices.Clone(providers)
	for i := range out {
		out[i].Regions = slices.Clone(out[i].Regions)
	}
	return out
}

// Organisation returns the demo organisation with the given id.
func Organisation(id string) (tocsin.Organisation, bool) {
	i := slices.IndexFunc(organisations, func(o tocsin.Organisation) bool { return o.ID == id })
	if i < 0 {
		return tocsin.Organisation{}, false
	}
	return organisations[i], true
}

// Actor is the caller a demo token or web login for o acts as: the
// organisation itself, under its own id.
func Actor(o tocsin.Organisation) tocsin.Actor {
	return tocsin.Actor{Subject: o.ID, Role: o.Role, Org: o.ID, Level: o.Level, Jurisdiction: o.Jurisdiction}
}
