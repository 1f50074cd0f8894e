// Command lago-plugin-builder-virtcustomize is the "virt-customize" builder:
// a disk's `build: [{virt-customize: {option: arg}}]` in the init file
// becomes one `virt-customize -a <disk> --option arg ...` run, with the
// tool's output streamed back to the core as progress lines.
package main

import "github.com/lago-go/lago/sdk"

var version = "dev"

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "builder-virtcustomize",
		Version: version,
		Components: []sdk.Component{{
			Info: sdk.ComponentInfo{
				Name:        "virt-customize",
				Kind:        sdk.KindBuilder,
				Description: "customizes a disk image with libguestfs' virt-customize",
				ConfigSchema: []sdk.ConfigField{
					{Name: "virt_customize", Type: "string", Default: "virt-customize", Description: "the virt-customize program to run"},
					{Name: "libguestfs_backend", Type: "string", Default: "direct", Description: "LIBGUESTFS_BACKEND for the run (the core passes its [init] libguestfs_backend); unset, LIBGUESTFS_BACKEND from the environment or direct"},
					{Name: "libguestfs_backend_settings", Type: "string", Description: "LIBGUESTFS_BACKEND_SETTINGS for the run (force_tcg when the core's [init] libguestfs_force_tcg says so)"},
					{Name: "libguestfs_memsize", Type: "string", Description: "LIBGUESTFS_MEMSIZE for the run, in MiB (the core's [init] libguestfs_memsize)"},
				},
			},
			Impl: &builder{},
		}},
	})
}
