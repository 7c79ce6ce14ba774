package mapping

import (
	"strings"
	"testing"
)

func BenchmarkMap(b *testing.B) {
	cols := strings.Split("Index,Customer Id,First Name,Last Name,Company,City,Country,Phone 1,Phone 2,Email,Subscription Date,Website", ",")
	spec, _ := Auto(cols)
	m, err := Compile(spec, cols, indexOf(cols), Options{Campaign: "Spring Promo"})
	if err != nil {
		b.Fatal(err)
	}
	row := strings.Split("1,DD37Cf93aecA6Dc,Sheryl,Baxter,Rasmussen Group,East Leonard,Chile,229.077.5154,397.884.0519x718,Zunigavanessa@Smith.info,2020-08-24,http://www.stephenson.com/", ",")
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := m.Map(row); errs != nil {
			b.Fatal(errs)
		}
	}
}

func BenchmarkMapHugeValues(b *testing.B) {
	cols := []string{"First Name", "Last Name", "Email", "Country"}
	spec, _ := Auto(cols)
	m, _ := Compile(spec, cols, indexOf(cols), Options{Campaign: "X"})
	big := strings.Repeat("é", 1<<14)
	row := []string{big, big, big, big}
	for b.Loop() {
		m.Map(row)
	}
}
