module github.com/lago-go/lago/plugins/builder-virtcustomize

go 1.26.0

replace github.com/lago-go/lago/proto => ../../proto

replace github.com/lago-go/lago/sdk => ../../sdk
