//go:build tools

// The suite's echo backend is built from the conformance module (make conformance builds it into an image).
package conformance_test

import _ "sigs.k8s.io/gateway-api/conformance/echo-basic"
