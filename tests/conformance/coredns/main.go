// Command coredns is the UDP backend of the conformance suite's base manifests (a Deployment of
// registry.k8s.io/coredns/coredns running the suite's Corefile: errors, log, forward, whoami). Built from the
// same CoreDNS module as the test cluster's DNS server, with those plugins, so the pod runs and the suite's
// Setup finds every pod Ready. Only GATEWAY-UDP tests query it; GATEWAY-HTTP never does, so its forward
// plugin never sends a query off the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/whoami"
)

// The order in which the plugins handle a query (a subset of CoreDNS's plugin.cfg, same order).
var directives = []string{
	"errors",
	"log",
	"forward",
	"whoami",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
