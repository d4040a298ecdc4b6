package hashicorp_test

import (
	"testing"

	"github.com/connectors-gateway/connectors/vault/storetest"
)

func TestHashiCorpAPIKeys(t *testing.T) {
	v := startVault(t)
	storetest.RunAPIKeys(t, v.open(t, v.token(t, "gateway-service")))
}
