package portmap

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseProcNetRouteFindsTheDefaultGateway(t *testing.T) {
	route := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
	gw, err := ParseProcNetRoute([]byte(route))
	if err != nil || gw != netip.MustParseAddr("10.0.1.1") {
		t.Fatalf("gateway %s, %v; want 10.0.1.1", gw, err)
	}
	if _, err := ParseProcNetRoute([]byte(route[:strings.LastIndex(route, "eth0")])); err == nil {
		t.Error("a table without a default route gave a gateway")
	}
}

// fakeNATPMP answers NAT-PMP (RFC 6886) on 127.0.0.1:5351 as a gateway
// with external address 198.51.100.7 that maps every port to port+1000.
type fakeNATPMP struct {
	mu     sync.Mutex
	mapped map[uint16]uint32 // internal port -> lifetime
	refuse bool
}

func startFakeNATPMP(t *testing.T) *fakeNATPMP {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5351})
	if err != nil {
		t.Skipf("cannot bind the NAT-PMP port 127.0.0.1:5351: %v", err)
	}
	f := &fakeNATPMP{mapped: map[uint16]uint32{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if out := f.answer(buf[:n]); out != nil {
				c.WriteToUDPAddrPort(out, from)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return f
}

func (f *fakeNATPMP) answer(req []byte) []byte {
	if len(req) < 2 || req[0] != 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	result := uint16(0)
	if f.refuse {
		result = 2 // not authorized
	}
	switch {
	case req[1] == 0 && len(req) == 2:
		out := []byte{0, 128, 0, 0, 0, 0, 0, 1, 198, 51, 100, 7}
		binary.BigEndian.PutUint16(out[2:], result)
		return out
	case (req[1] == 1 || req[1] == 2) && len(req) == 12:
		in := binary.BigEndian.Uint16(req[4:])
		life := binary.BigEndian.Uint32(req[8:])
		out := make([]byte, 16)
		out[1] = 128 + req[1]
		binary.BigEndian.PutUint16(out[2:], result)
		binary.BigEndian.PutUint32(out[4:], 1)
		binary.BigEndian.PutUint16(out[8:], in)
		if result == 0 {
			if life == 0 {
				delete(f.mapped, in)
			} else {
				f.mapped[in] = life
				binary.BigEndian.PutUint16(out[10:], in+1000)
			}
		}
		binary.BigEndian.PutUint32(out[12:], life)
		return out
	}
	return nil
}

func TestNATPMPProbeMapAndUnmap(t *testing.T) {
	f := startFakeNATPMP(t)
	cfg := Config{Gateway: netip.MustParseAddr("127.0.0.1"), NoUPnP: true, Timeout: time.Second}
	ctx := context.Background()
	st := Probe(ctx, cfg)
	if len(st) != 1 || st[0].Protocol != NATPMP || st[0].Err != "" || st[0].External != netip.MustParseAddr("198.51.100.7") {
		t.Fatalf("probe %+v", st)
	}
	m, err := Map(ctx, cfg, 4242, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if m.Protocol != NATPMP || m.External != netip.MustParseAddrPort("198.51.100.7:5242") || m.Lifetime != time.Hour || m.Internal != 4242 {
		t.Fatalf("mapping %+v", m)
	}
	f.mu.Lock()
	if f.mapped[4242] != 3600 {
		t.Errorf("gateway holds %v", f.mapped)
	}
	f.mu.Unlock()
	if err := Unmap(ctx, cfg, m); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	if _, ok := f.mapped[4242]; ok {
		t.Error("mapping still there after Unmap")
	}
	f.refuse = true
	f.mu.Unlock()
	if _, err := Map(ctx, cfg, 4242, time.Hour); err == nil {
		t.Error("a refusing gateway gave a mapping")
	}
}

func TestProbeReportsSilence(t *testing.T) {
	// Nothing listens on 127.0.0.2:5351 and no IGD is at the URL.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	cfg := Config{Gateway: netip.MustParseAddr("127.0.0.2"), UPnPURL: srv.URL + "/rootDesc.xml", Timeout: 300 * time.Millisecond}
	st := Probe(context.Background(), cfg)
	if len(st) != 2 {
		t.Fatalf("probe %+v", st)
	}
	for _, s := range st {
		if s.Err == "" || s.External.IsValid() {
			t.Errorf("%s: %+v, want an error", s.Protocol, s)
		}
	}
}

const rootDesc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
 <specVersion><major>1</major><minor>0</minor></specVersion>
 <device>
  <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>
  <friendlyName>fake IGD</friendlyName><UDN>uuid:00000000-0000-0000-0000-000000000001</UDN>
  <deviceList><device>
   <deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><UDN>uuid:00000000-0000-0000-0000-000000000002</UDN>
   <deviceList><device>
    <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType><UDN>uuid:00000000-0000-0000-0000-000000000003</UDN>
    <serviceList><service>
     <serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>
     <serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
     <controlURL>/ctl</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/scpd.xml</SCPDURL>
    </service></serviceList>
   </device></deviceList>
  </device></deviceList>
 </device>
</root>`

func soapReply(action, body string) string {
	return `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>` +
		fmt.Sprintf(`<u:%sResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2">%s</u:%sResponse>`, action, body, action) +
		`</s:Body></s:Envelope>`
}

func TestUPnPMapThroughAnIGD(t *testing.T) {
	var mu sync.Mutex
	var added, deleted string
	mux := http.NewServeMux()
	mux.HandleFunc("/rootDesc.xml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, rootDesc)
	})
	mux.HandleFunc("/ctl", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		action := r.Header.Get("SOAPAction")
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.Contains(action, "#GetExternalIPAddress"):
			io.WriteString(w, soapReply("GetExternalIPAddress", "<NewExternalIPAddress>198.51.100.9</NewExternalIPAddress>"))
		case strings.Contains(action, "#AddPortMapping"):
			added = string(b)
			io.WriteString(w, soapReply("AddPortMapping", ""))
		case strings.Contains(action, "#DeletePortMapping"):
			deleted = string(b)
			io.WriteString(w, soapReply("DeletePortMapping", ""))
		default:
			http.Error(w, "unknown action "+action, http.StatusInternalServerError)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg := Config{UPnPURL: srv.URL + "/rootDesc.xml", NoNATPMP: true, Timeout: time.Second}
	ctx := context.Background()
	st := Probe(ctx, cfg)
	if len(st) != 1 || st[0].Err != "" || st[0].External != netip.MustParseAddr("198.51.100.9") || st[0].Gateway != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("probe %+v", st)
	}
	m, err := Map(ctx, cfg, 4242, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m.Protocol != UPnP || m.External != netip.MustParseAddrPort("198.51.100.9:4242") {
		t.Fatalf("mapping %+v", m)
	}
	mu.Lock()
	for _, want := range []string{"<NewExternalPort>4242</NewExternalPort>", "<NewProtocol>UDP</NewProtocol>", "<NewInternalClient>127.0.0.1</NewInternalClient>", "<NewLeaseDuration>600</NewLeaseDuration>"} {
		if !strings.Contains(added, want) {
			t.Errorf("AddPortMapping request lacks %s:\n%s", want, added)
		}
	}
	mu.Unlock()
	if err := Unmap(ctx, cfg, m); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if !strings.Contains(deleted, "<NewExternalPort>4242</NewExternalPort>") {
		t.Errorf("DeletePortMapping request:\n%s", deleted)
	}
	mu.Unlock()
}

func FuzzParseProcNetRoute(f *testing.F) {
	f.Add([]byte("Iface\tDestination\tGateway\neth0\t00000000\t0101000A\t0003\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseProcNetRoute(b)
		if err == nil && (!a.Is4() || a.IsUnspecified()) {
			t.Fatalf("gateway %s", a)
		}
	})
}
