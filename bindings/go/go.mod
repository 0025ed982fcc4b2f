// SPDX-License-Identifier: MIT
module github.com/libwhsem/libwhsem/bindings/go

go 1.22
