// The official Gateway API conformance suite, built as one test binary against Graylane (make conformance).
// Its flags (--gateway-class, --conformance-profiles, --report-output, ...) are the suite's own.
package conformance_test

import (
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
)

func TestConformance(t *testing.T) {
	conformance.RunConformance(t)
}
