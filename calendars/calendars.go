// Package calendars holds the official working-day calendars of the People's
// Republic of China as data: one JSON file per year under cn/, transcribing
// the State Council General Office's yearly notice on holiday arrangements
// (国务院办公厅关于XXXX年部分节假日安排的通知), including the weekend days
// that become working days (调休上班).
//
// The files are embedded in the binary. An operator adds a year that was
// published after the build by writing the same format to a directory passed
// at run time (see internal/calendar.Load); such a file also overrides the
// embedded file for the same year.
//
// File format (cn/YYYY.json, all dates YYYY-MM-DD inside that year):
//
//	{
//	  "year": 2026,
//	  "notice": "国务院办公厅关于2026年部分节假日安排的通知",
//	  "sources": ["gov.cn/zhengce/zhengceku/202511/content_7047091.htm"],
//	  "holidays": [
//	    {"name": "元旦", "name_en": "New Year's Day", "from": "2026-01-01", "to": "2026-01-03"}
//	  ],
//	  "workdays": [
//	    {"date": "2026-01-04", "for": "元旦"}
//	  ]
//	}
//
// "holidays" are the days off, from and to inclusive; "workdays" are the
// make-up working days (always a Saturday or Sunday) and the holiday each
// one compensates.
package calendars

import "embed"

// FS holds cn/YYYY.json for every year shipped with the binary.
//
//go:embed cn/*.json
var FS embed.FS
