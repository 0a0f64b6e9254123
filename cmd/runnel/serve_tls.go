package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
)

// maxPEMFile bounds what serve reads of -tls-cert and -tls-key: a chain
// of certificates is a few KiB, and a file named by mistake (a disk
// image, /dev/zero) must be refused, not read into memory whole.
const maxPEMFile = 1 << 20

// loadKeyPair is tls.LoadX509KeyPair, with each file read up to
// maxPEMFile, and errors that name the files: tls's say only "certificate
// input" or "private key".
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := readPEMFile("-tls-cert", certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readPEMFile("-tls-key", keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("-tls-cert %s, -tls-key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// readPEMFile reads the file of a flag, up to maxPEMFile.
func readPEMFile(flag, name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: reading %s: %w", flag, name, err)
	case len(data) > maxPEMFile:
		return nil, fmt.Errorf("%s: %s is more than %d bytes, not a PEM file", flag, name, maxPEMFile)
	}
	return data, nil
}
