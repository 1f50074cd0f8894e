// Command lago-plugin-service-sysvinit is the service manager for guests
// running sysvinit (/sbin/service), through the core's Host service.
package main

import (
	"strings"

	"github.com/lago-go/lago/sdk"
	"github.com/lago-go/lago/sdk/servicecmd"
)

var version = "dev"

// spec mirrors the original Lago's SysVInitService: supported when
// /sbin/service exists. Init scripts follow the LSB status codes, but many
// exit 1 for an unknown service with "unrecognized service", which is
// therefore read as missing.
var spec = servicecmd.Spec{
	Name:   "sysvinit",
	Probe:  []string{"test", "-e", "/sbin/service"},
	Status: func(s string) []string { return []string{"/sbin/service", s, "status"} },
	Start:  func(s string) []string { return []string{"/sbin/service", s, "start"} },
	Stop:   func(s string) []string { return []string{"/sbin/service", s, "stop"} },
	Classify: func(code int, out string) string {
		switch {
		case strings.Contains(out, "unrecognized service"), code == 4:
			return servicecmd.StateMissing
		case code == 0:
			return servicecmd.StateActive
		case code == 1, code == 2, code == 3:
			return servicecmd.StateInactive
		}
		return servicecmd.StateUnknown
	},
}

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "service-sysvinit",
		Version: version,
		Components: []sdk.Component{{
			Info: sdk.ComponentInfo{
				Name:        "sysvinit",
				Kind:        sdk.KindService,
				Description: "services of guests running sysvinit (/sbin/service)",
			},
			Impl: servicecmd.New(spec),
		}},
	})
}
