package testkit

// Notice2027 is a State Council notice for 2027 in the published format,
// written for tests: the 2027 notice was not in hand when it was written,
// so its dates follow the law and the lunar calendar (Spring Festival from
// New Year's Eve, 2027-02-05) but are not the official schedule. Never
// ship it as a calendar.
const Notice2027 = `国务院办公厅关于2027年部分节假日安排的通知

各省、自治区、直辖市人民政府，国务院各部委、各直属机构：

经国务院批准，现将2027年元旦、春节、清明节、劳动节、端午节、中秋节和国庆节放假调休日期的具体安排通知如下。

一、元旦：1月1日（周五）至3日（周日）放假，共3天。

二、春节：2月5日（农历除夕、周五）至13日（农历正月初八、周六）放假调休，共9天。1月31日（周日）、2月14日（周日）上班。

三、清明节：4月3日（周六）至5日（周一）放假，共3天。

四、劳动节：5月1日（周六）至5日（周三）放假调休，共5天。5月8日（周六）上班。

五、端午节：6月9日（周三）放假，共1天。

六、中秋节：9月15日（周三）放假，共1天。

七、国庆节：10月1日（周五）至7日（周四）放假调休，共7天。9月26日（周日）、10月9日（周六）上班。

国务院办公厅

2026年11月10日
`
