package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"iop/signaling/token"
)

// runKeygen makes a signing key and publishes its public half.
func runKeygen(args []string, stdout io.Writer) error {
	cmd := newCommand("keygen", "-alg EdDSA|ES256 -out private.pem [-pub public.pem] [-jwks keys.json]", stdout)
	var (
		alg  = cmd.String("alg", token.AlgEdDSA, "signing algorithm: EdDSA (Ed25519) or ES256 (P-256)")
		out  = cmd.String("out", "", "file for the private key, created with mode 0600; never overwritten (required)")
		pub  = cmd.String("pub", "", "PEM file of public keys to add the new public key to (created if missing); unset: print it")
		jwks = cmd.String("jwks", "", "JWK set file to add the new public key to (created if missing)")
	)
	if err := cmd.parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("keygen: -out required")
	}
	priv, err := token.GenerateKey(*alg)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	key, err := token.PublicKey(priv)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	privPEM, err := token.MarshalPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pubPEM, err := token.MarshalPEM([]token.Key{key})
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	// Check the public key files before writing the private key, so that a
	// mistake there leaves nothing behind.
	var jwksData []byte
	if *jwks != "" {
		if jwksData, err = addToJWKS(*jwks, key); err != nil {
			return err
		}
	}
	var pubData []byte
	if *pub != "" {
		if pubData, err = addToPEM(*pub, pubPEM); err != nil {
			return err
		}
	}
	if err := writeNew(*out, privPEM); err != nil {
		return err
	}
	if *pub != "" {
		if err := replaceFile(*pub, pubData); err != nil {
			return err
		}
	}
	if *jwks != "" {
		if err := replaceFile(*jwks, jwksData); err != nil {
			return err
		}
	}
	if *pub == "" {
		_, err = stdout.Write(pubPEM)
	} else {
		_, err = fmt.Fprintf(stdout, "kid: %s\n", key.ID)
	}
	return err
}

// writeNew creates path with data, readable by its owner only, refusing to
// replace an existing file.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: write private key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("keygen: write private key: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("keygen: write private key: %w", err)
	}
	return nil
}

// readExisting returns the contents of path, or nil if it does not exist.
func readExisting(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	return b, nil
}

// addToPEM returns the PEM key file at path (if any) with block appended,
// after checking that the file loads as a key set, now and with the new key.
func addToPEM(path string, block []byte) ([]byte, error) {
	old, err := readExisting(path)
	if err != nil {
		return nil, err
	}
	data := block
	if len(bytes.TrimSpace(old)) > 0 {
		data = append(append(bytes.TrimRight(old, "\n"), "\n\n"...), block...)
	}
	if _, err := token.ParseKeys(data); err != nil {
		return nil, fmt.Errorf("keygen: %s: %w", path, err)
	}
	return data, nil
}

// addToJWKS returns the JWK set at path (if any) with key added, keeping the
// other keys as they are written.
func addToJWKS(path string, key token.Key) ([]byte, error) {
	old, err := readExisting(path)
	if err != nil {
		return nil, err
	}
	set := map[string]json.RawMessage{}
	var keys []json.RawMessage
	if len(bytes.TrimSpace(old)) > 0 {
		if err := json.Unmarshal(old, &set); err != nil {
			return nil, fmt.Errorf("keygen: %s is not a JWK set: %w", path, err)
		}
		if raw, ok := set["keys"]; ok {
			if err := json.Unmarshal(raw, &keys); err != nil {
				return nil, fmt.Errorf("keygen: %s: keys: %w", path, err)
			}
		}
	}
	one, err := token.MarshalJWKS([]token.Key{key})
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	var added struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(one, &added); err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	keysJSON, err := json.Marshal(append(keys, added.Keys...))
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	set["keys"] = keysJSON
	compact, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	var data bytes.Buffer
	if err := json.Indent(&data, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	data.WriteByte('\n')
	if _, err := token.ParseKeys(data.Bytes()); err != nil {
		return nil, fmt.Errorf("keygen: %s: %w", path, err)
	}
	return data.Bytes(), nil
}

// replaceFile writes data to path through a temporary file and a rename, so
// that an iopd reloading the file never reads half of it.
func replaceFile(path string, data []byte) error {
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing is left to remove
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("keygen: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("keygen: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keygen: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keygen: write %s: %w", path, err)
	}
	return nil
}
