package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/biter777/countries"

	"github.com/revcent-import/revcent-import/revcent"
)

// poster is the baseline: the least a Go program must do to import the
// same file. It reads the CSV, builds the same body the importer sends
// (same fields, country looked up once per distinct value), marshals it,
// POSTs it with a tuned transport and the same concurrency, and reads the
// answer. No validation, no journal, no retries.
func poster(path, url, key string, workers int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost, t.MaxConnsPerHost = workers*2, workers, workers
	client := &http.Client{Transport: t}
	jobs := make(chan revcent.CreateCustomerRequest, workers*2)
	var wg sync.WaitGroup
	var failed error
	var mu sync.Mutex
	for range workers {
		wg.Go(func() {
			var buf bytes.Buffer
			for req := range jobs {
				buf.Reset()
				json.NewEncoder(&buf).Encode(&req)
				hr, _ := http.NewRequest("POST", url+"/customers", bytes.NewReader(buf.Bytes()))
				hr.Header.Set("x-api-key", key)
				hr.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(hr)
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					continue
				}
				var out revcent.Response
				json.NewDecoder(resp.Body).Decode(&out)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if out.Code != 1 {
					mu.Lock()
					failed = fmt.Errorf("answer %d: %+v", resp.StatusCode, out)
					mu.Unlock()
				}
			}
		})
	}
	r := csv.NewReader(bufio.NewReaderSize(f, 64<<10))
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil { // header
		return err
	}
	a3 := map[string]string{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		country, ok := a3[rec[6]]
		if !ok {
			country = countries.ByName(rec[6]).Alpha3()
			a3[rec[6]] = country
		}
		// The fake.Header columns, mapped as the importer auto-maps them.
		jobs <- revcent.CreateCustomerRequest{
			Campaign:           "Spring Promo",
			Customer:           revcent.Contact{FirstName: rec[2], LastName: rec[3], Email: lower(rec[9]), City: rec[5], Country: country, Company: rec[4], Phone: rec[7]},
			InternalCustomerID: rec[1],
		}
	}
	close(jobs)
	wg.Wait()
	return failed
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
