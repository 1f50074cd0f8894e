module github.com/lago-go/lago/plugins/provider-libvirt

go 1.26.0

replace github.com/lago-go/lago/proto => ../../proto

replace github.com/lago-go/lago/sdk => ../../sdk

require (
	github.com/fatih/color v1.13.0 // indirect
	github.com/hashicorp/go-hclog v1.6.3 // indirect
	github.com/mattn/go-colorable v0.1.12 // indirect
	github.com/mattn/go-isatty v0.0.14 // indirect
	golang.org/x/sys v0.0.0-20220503163025-988cb79eb6c6 // indirect
	libvirt.org/go/libvirt v1.11006.0 // indirect
	libvirt.org/go/libvirtxml v1.12008.0 // indirect
)
