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
// File format (cn/YYYY.json, all dates YYYY-MM-DD inside that year or
// within a week of it: New Year's Day can start in the last days of the year
// before, as in 2019 and 2023):
//
//	{
//	  "year": 2026,
//	  "notice": "国务院办公厅关于2026年部分节假日安排的通知",
//	  "source": {"title": "国务院办公厅关于2026年部分节假日安排的通知", "number": "国办发明电〔2025〕N号", "date": "2025-11-04"},
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
// one compensates. "source" (optional, written by `tocsin calendar import`)
// identifies the notice the file was read from; "number" and "date" are
// there when the text gives them. Every file must pass calendar.Check (the
// statutory days off of 《全国年节及纪念日放假办法》, make-up days on
// weekends, unbroken holiday stretches) before it is used.
package calendars

import "embed"

// FS holds cn/YYYY.json for every year shipped with the binary.
//
//go:embed cn/*.json
var FS embed.FS
