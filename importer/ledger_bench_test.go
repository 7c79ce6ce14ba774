package importer

import (
	"testing"

	"github.com/revcent-import/revcent-import/revcent"
)

// BenchmarkRequestHash is the per-row cost of the request_hash every sent
// row's outcome line carries.
func BenchmarkRequestHash(b *testing.B) {
	req := revcent.CreateCustomerRequest{Campaign: "Spring Promo", InternalCustomerID: "13AE552751BEEA3",
		Customer: revcent.Contact{FirstName: "Noah", LastName: "Mckay", Email: "noah.mckay1@example.com", Phone: "+13819072494", Company: "Vega-Gentry", City: "São Paulo", Country: "IND"}}
	b.ReportAllocs()
	for b.Loop() {
		requestHash(req)
	}
}
