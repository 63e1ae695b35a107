package sim

import (
	"testing"
	"time"
)

// The scenario: hosts bootstrapped from 3 trackers, 30 % behind
// port-restricted NATs, must each reach 20 verified peers within 60
// simulated seconds, NATed hosts included, through puncture. The size is
// scenarioNodes: 1 000 normally, fewer under the race detector (which
// slows signing and verification about tenfold), see race_test.go.
func TestHostsBehindNATsReachTwentyPeersWithinAMinute(t *testing.T) {
	nodes := scenarioNodes
	if testing.Short() {
		nodes = min(nodes, 200)
	}
	res, err := Run(Config{Nodes: nodes, Trackers: 3, NATFraction: 0.3, Duration: 60 * time.Second, Target: 20, Seed: 1,
		StopWhenConverged: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", res)
	if res.AllConvergedAt < 0 || res.AllConvergedAt > 60*time.Second {
		t.Fatalf("%d of %d hosts reached 20 verified peers within 60 s", res.Converged, res.Nodes)
	}
	if res.NATNodes < nodes/5 || res.NATConverged != res.NATNodes {
		t.Fatalf("NATed hosts: %d converged of %d", res.NATConverged, res.NATNodes)
	}
	// Two hosts behind port-restricted NATs only verify each other when a
	// puncture opened one of the NATs: most NATed hosts must have done so.
	if res.NATedWithNATPeer < res.NATNodes*9/10 {
		t.Fatalf("only %d of %d NATed hosts verified a NATed peer", res.NATedWithNATPeer, res.NATNodes)
	}
	if res.Stats.PuncturesIn == 0 || res.Stats.BadSignature != 0 {
		t.Fatalf("stats %+v", res.Stats)
	}
}

// Without puncture the same NATed hosts rarely reach each other (only when
// two happened to walk to each other, which is an accidental hole punch):
// the control that shows the previous test measures puncture.
func TestWithoutPunctureNATedHostsRarelyMeet(t *testing.T) {
	cfg := Config{Nodes: 150, NATFraction: 0.3, Duration: 30 * time.Second, Seed: 2}
	with, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DisablePuncture = true
	without, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("with puncture:\n%s\nwithout:\n%s", with, without)
	if without.Stats.PuncturesSent != 0 {
		t.Fatal("punctures sent while disabled")
	}
	if with.NATConverged != with.NATNodes || without.NATConverged == without.NATNodes {
		t.Fatalf("NATed hosts converged: %d/%d with puncture, %d/%d without",
			with.NATConverged, with.NATNodes, without.NATConverged, without.NATNodes)
	}
	if without.NATPairs*3 > with.NATPairs {
		t.Fatalf("NAT-NAT peer entries: %d with puncture, %d without", with.NATPairs, without.NATPairs)
	}
}
