// Command echo shows the smallest useful go-ipv8 program: two hosts, an
// echo handler registered by protocol ID on one, and the other dialling it
// by peer ID and echoing a stream.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/transport"
)

const echoProtocol = "/example/echo/1"

func main() {
	ctx := context.Background()

	server, err := ipv8.New(ipv8.ListenAddrs("/ip4/127.0.0.1/udp/0"))
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetStreamHandler(echoProtocol, func(s transport.Stream) {
		defer s.Close()
		io.Copy(s, s) // echo until the client half-closes
	})

	client, err := ipv8.New(ipv8.ListenAddrs("/ip4/127.0.0.1/udp/0"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// The client knows the server by its peer ID; its addresses would come
	// from discovery, here straight from the server.
	client.Peerstore().AddAddrs(server.ID(), server.Addrs(), host.TempAddrTTL)

	s, err := client.NewStream(ctx, server.ID(), echoProtocol)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(s, strings.NewReader("hello, peer "+server.ID().String())); err != nil {
		log.Fatal(err)
	}
	s.CloseWrite()
	reply, err := io.ReadAll(s)
	if err != nil {
		log.Fatal(err)
	}
	s.Close()
	fmt.Printf("echoed: %s\n", reply)
}
