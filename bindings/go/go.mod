module libwhsem/go/whsem

go 1.22
