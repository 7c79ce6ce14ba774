// Package mapping turns input rows into CreateCustomer requests: the
// mapping file, header auto-mapping, transforms, the normalisation that is
// always applied (trimmed values, lower-cased emails, alpha-3 countries,
// digit-only Luhn-checked card numbers, integer card expiry), and
// validation, so that a row RevCent would refuse is reported before any
// request is sent. It is pure: no I/O, no goroutines.
package mapping

import (
	"strings"

	"github.com/revcent-import/revcent-import/revcent"
)

// setter stores a normalised value into a request.
type setter func(r *revcent.CreateCustomerRequest, v string)

// kind says which normalisation a target always gets.
type kind uint8

const (
	plain kind = iota
	emailKind
	countryKind
	cardNumberKind
	cardCodeKind
	expMonthKind
	expYearKind
	phoneKind
)

type target struct {
	kind kind
	set  setter
}

var contactFields = []struct {
	name string
	kind kind
	ptr  func(c *revcent.Contact) *string
}{
	{"first_name", plain, func(c *revcent.Contact) *string { return &c.FirstName }},
	{"last_name", plain, func(c *revcent.Contact) *string { return &c.LastName }},
	{"email", emailKind, func(c *revcent.Contact) *string { return &c.Email }},
	{"address_line_1", plain, func(c *revcent.Contact) *string { return &c.AddressLine1 }},
	{"address_line_2", plain, func(c *revcent.Contact) *string { return &c.AddressLine2 }},
	{"city", plain, func(c *revcent.Contact) *string { return &c.City }},
	{"state", plain, func(c *revcent.Contact) *string { return &c.State }},
	{"zip", plain, func(c *revcent.Contact) *string { return &c.Zip }},
	{"country", countryKind, func(c *revcent.Contact) *string { return &c.Country }},
	{"company", plain, func(c *revcent.Contact) *string { return &c.Company }},
	{"phone", phoneKind, func(c *revcent.Contact) *string { return &c.Phone }},
}

// targets are the fixed target paths; metadata.<name> is handled apart.
var targets = func() map[string]target {
	t := map[string]target{
		"campaign":                        {plain, func(r *revcent.CreateCustomerRequest, v string) { r.Campaign = v }},
		"internal_customer_id":            {plain, func(r *revcent.CreateCustomerRequest, v string) { r.InternalCustomerID = v }},
		"payment.credit_card.card_number": {cardNumberKind, func(r *revcent.CreateCustomerRequest, v string) { card(r).CardNumber = v }},
		"payment.credit_card.card_code":   {cardCodeKind, func(r *revcent.CreateCustomerRequest, v string) { card(r).CardCode = v }},
		"payment.credit_card.exp_month":   {expMonthKind, func(r *revcent.CreateCustomerRequest, v string) { card(r).ExpMonth = atoi(v) }},
		"payment.credit_card.exp_year":    {expYearKind, func(r *revcent.CreateCustomerRequest, v string) { card(r).ExpYear = atoi(v) }},
	}
	for _, f := range contactFields {
		ptr := f.ptr
		t["customer."+f.name] = target{f.kind, func(r *revcent.CreateCustomerRequest, v string) { *ptr(&r.Customer) = v }}
		t["bill_to."+f.name] = target{f.kind, func(r *revcent.CreateCustomerRequest, v string) {
			if r.BillTo == nil {
				r.BillTo = &revcent.Contact{}
			}
			*ptr(r.BillTo) = v
		}}
	}
	return t
}()

func card(r *revcent.CreateCustomerRequest) *revcent.CreditCard {
	if r.Payment == nil {
		r.Payment = &revcent.Payment{}
	}
	if r.Payment.CreditCard == nil {
		r.Payment.CreditCard = &revcent.CreditCard{}
	}
	return r.Payment.CreditCard
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// synonyms maps a normalised header name (lower case, without spaces, _,
// - or .) to the contact field it usually holds.
var synonyms = map[string]string{
	"firstname": "first_name", "first": "first_name", "givenname": "first_name", "fname": "first_name", "forename": "first_name",
	"lastname": "last_name", "last": "last_name", "surname": "last_name", "familyname": "last_name", "lname": "last_name",
	"email": "email", "emailaddress": "email", "mail": "email", "emailid": "email",
	"phone": "phone", "phone1": "phone", "phonenumber": "phone", "mobile": "phone", "mobilephone": "phone", "mobilenumber": "phone",
	"cell": "phone", "cellphone": "phone", "telephone": "phone", "tel": "phone", "primaryphone": "phone",
	"zip": "zip", "zipcode": "zip", "postalcode": "zip", "postcode": "zip", "postal": "zip",
	"state": "state", "province": "state", "region": "state", "stateprovince": "state", "stateorprovince": "state",
	"address": "address_line_1", "address1": "address_line_1", "addressline1": "address_line_1", "street": "address_line_1",
	"streetaddress": "address_line_1", "street1": "address_line_1",
	"address2": "address_line_2", "addressline2": "address_line_2", "street2": "address_line_2",
	"city": "city", "town": "city",
	"country": "country", "countrycode": "country", "countryname": "country",
	"company": "company", "companyname": "company", "organization": "company", "organisation": "company", "org": "company", "business": "company",
	// From the exports people have (their published header lists):
	// Shopify "Province Code", "Country Code"; Salesforce "Mailing
	// State/Province", "Mailing Zip/Postal Code", "Account Name"; HubSpot
	// "State/Region", "Country/Region", "Phone Number"; QuickBooks
	// "BillAddr1", "Main Email", "Main Phone"; Stripe "Address Line1";
	// Google Contacts "E-mail 1 - Value", "Phone 1 - Value", "Organization
	// Name"; Mailchimp "Email Address"; WooCommerce "Billing Postcode".
	"provincecode": "state", "statecode": "state", "state/province": "state", "state/region": "state", "stateregion": "state",
	"county": "state", "zip/postalcode": "zip", "postalzip": "zip", "zippostalcode": "zip",
	"country/region": "country", "countryregion": "country",
	"addr1": "address_line_1", "addr2": "address_line_2", "line1": "address_line_1", "line2": "address_line_2",
	"streetaddress1": "address_line_1", "streetaddress2": "address_line_2", "streetline1": "address_line_1", "streetline2": "address_line_2",
	"mainemail": "email", "primaryemail": "email", "email1value": "email", "emailaddress1": "email",
	"mainphone": "phone", "phone1value": "phone", "businessphone": "phone", "homephone": "phone", "workphone": "phone",
	"accountname": "company", "organizationname": "company", "organization1name": "company", "companyname1": "company",
}

// customerPrefixes mark a column as the customer's own address (Shopify's
// "Default Address ...", Salesforce's "Mailing ...", Google Contacts'
// "Address 1 - ...", Stripe's "Address ..."): a name without a prefix
// wins over one with.
var customerPrefixes = []string{"defaultaddress", "mailing", "mailingaddress", "primaryaddress", "homeaddress", "address1", "address"}

// shippingPrefixes mark a shipping address, which CreateCustomer has no
// place for: such columns are left out, and a note says so.
var shippingPrefixes = []string{"shipping", "shipto", "ship", "delivery"}

// otherSynonyms maps normalised header names to targets outside contacts.
var otherSynonyms = map[string]string{
	"customerid": "internal_customer_id", "externalid": "internal_customer_id", "internalcustomerid": "internal_customer_id",
	"internalid": "internal_customer_id", "crmid": "internal_customer_id", "externalcustomerid": "internal_customer_id",
	"campaign": "campaign", "campaignname": "campaign", "campaignid": "campaign",
	"cardnumber": "payment.credit_card.card_number", "creditcard": "payment.credit_card.card_number",
	"creditcardnumber": "payment.credit_card.card_number", "ccnumber": "payment.credit_card.card_number",
	"cvv": "payment.credit_card.card_code", "cvc": "payment.credit_card.card_code", "cvv2": "payment.credit_card.card_code",
	"cardcode": "payment.credit_card.card_code", "securitycode": "payment.credit_card.card_code",
	"expmonth": "payment.credit_card.exp_month", "expirymonth": "payment.credit_card.exp_month", "expirationmonth": "payment.credit_card.exp_month",
	"expyear": "payment.credit_card.exp_year", "expiryyear": "payment.credit_card.exp_year", "expirationyear": "payment.credit_card.exp_year",
}

// expiryNames hold a whole MM/YY expiry, which maps to month and year.
var expiryNames = map[string]bool{"expiry": true, "expiration": true, "expdate": true, "expirationdate": true, "expirydate": true, "exp": true}

// billingPrefixes mark a column as bill_to's rather than the customer's
// (Stripe's "Card Address ..." is the card's billing address).
var billingPrefixes = []string{"billingaddress", "billto", "billing", "bill", "cardaddress"}

// normalise folds a header name for matching: lower case, without spaces,
// underscores, dashes and dots, so that "E-mail Address", "email_address"
// and "emailAddress" meet.
func normalise(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch r {
		case ' ', '_', '-', '.', '\t':
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// autoTargets returns the targets a header name maps to automatically (a
// combined expiry maps to two), or nil.
func autoTargets(header string) []string {
	t, _ := autoTargetsRank(header)
	return t
}

// Ranks of an automatic match: when two columns match one target, the
// lower rank wins ("Phone" over Shopify's "Default Address Phone").
const (
	rankExact = iota
	rankPrefixed
	rankNested
)

// autoTargetsRank is autoTargets with the match's rank.
func autoTargetsRank(header string) ([]string, int) {
	n := normalise(header)
	if t, ok := otherSynonyms[n]; ok {
		return []string{t}, rankExact
	}
	if expiryNames[n] {
		return []string{"payment.credit_card.exp_month", "payment.credit_card.exp_year"}, rankExact
	}
	if f, ok := synonyms[n]; ok {
		return []string{"customer." + f}, rankExact
	}
	for _, p := range shippingPrefixes {
		if rest, ok := strings.CutPrefix(n, p); ok && rest != "" {
			return nil, rankExact // a shipping address: no place in CreateCustomer
		}
	}
	for _, p := range billingPrefixes {
		if rest, ok := strings.CutPrefix(n, p); ok {
			if f, ok := synonyms[rest]; ok {
				return []string{"bill_to." + f}, rankExact
			}
		}
	}
	for _, p := range customerPrefixes {
		if rest, ok := strings.CutPrefix(n, p); ok {
			if f, ok := synonyms[rest]; ok {
				return []string{"customer." + f}, rankPrefixed
			}
		}
	}
	// Nested JSONL keys such as address.city or customer.email.
	if i := strings.LastIndexByte(header, '.'); i >= 0 {
		first := normalise(header[:strings.IndexByte(header, '.')])
		f, ok := synonyms[normalise(header[i+1:])]
		if !ok {
			return nil, rankExact
		}
		for _, p := range billingPrefixes {
			if first == p || first == p+"to" || first == "billingaddress" {
				return []string{"bill_to." + f}, rankNested
			}
		}
		for _, p := range shippingPrefixes {
			if first == p || first == p+"address" {
				return nil, rankExact
			}
		}
		return []string{"customer." + f}, rankNested
	}
	return nil, rankExact
}
