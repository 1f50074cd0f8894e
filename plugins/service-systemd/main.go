// Command lago-plugin-service-systemd is the service manager for guests
// running systemd. It reaches the guest only through the core's Host
// service, so it works for any provider the core can ssh into.
package main

import (
	"github.com/lago-go/lago/sdk"
	"github.com/lago-go/lago/sdk/servicecmd"
)

var version = "dev"

// spec mirrors the original Lago's SystemdService: supported when
// /usr/bin/systemctl exists; `systemctl status` exit codes follow the LSB
// (0 running, 3 not running, 4 no such unit).
var spec = servicecmd.Spec{
	Name:   "systemd",
	Probe:  []string{"test", "-e", "/usr/bin/systemctl"},
	Status: func(s string) []string { return []string{"systemctl", "status", "--no-pager", s} },
	Start:  func(s string) []string { return []string{"systemctl", "start", s} },
	Stop:   func(s string) []string { return []string{"systemctl", "stop", s} },
	Classify: func(code int, _ string) string {
		switch code {
		case 0:
			return servicecmd.StateActive
		case 3:
			return servicecmd.StateInactive
		case 4:
			return servicecmd.StateMissing
		}
		return servicecmd.StateUnknown
	},
}

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "service-systemd",
		Version: version,
		Components: []sdk.Component{{
			Info: sdk.ComponentInfo{
				Name:        "systemd",
				Kind:        sdk.KindService,
				Description: "services of guests running systemd (systemctl)",
			},
			Impl: servicecmd.New(spec),
		}},
	})
}
