module github.com/lago-go/lago/cmd/lago

go 1.26.0

replace github.com/lago-go/lago/proto => ../../proto

replace github.com/lago-go/lago/sdk => ../../sdk

replace github.com/lago-go/lago/core => ../../core
