package server

import "testing"

// newScenarioEnv is the running deployment the product scenarios of the
// compliance issue are tested against.
func newScenarioEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, envOptions{})
}
