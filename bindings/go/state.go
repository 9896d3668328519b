package tinymls

/*
#include <stdint.h>
#include "tinymls.h"
#include "tinymls_go.h"
*/
import "C"

import "runtime"

// KEKLen is the length of the key-encryption key of Export and Import.
const KEKLen = 32

// ExportFlags select what Export puts in a state blob.
type ExportFlags uint32

// ExportCurrentEpochOnly exports only the current epoch: the importer (a new
// replica, a new member) reads every message from now on and none before.
const ExportCurrentEpochOnly ExportFlags = C.TINYMLS_EXPORT_CURRENT_EPOCH_ONLY

// Compile-time checks against the header (see tinymls.go).
const (
	_ = uint(KEKLen-C.TINYMLS_STATE_KEK_LEN) + uint(C.TINYMLS_STATE_KEK_LEN-KEKLen)
)

// StateFormatVersion returns the state blob format the library writes and
// the newest it reads (tinymls_state_format_version). A blob of a newer
// format is refused with ErrMalformed.
func StateFormatVersion() uint32 { return uint32(C.tinymls_state_format_version()) }

// Export returns the context's state sealed under kek (KEKLen bytes) with
// AES-256-GCM (tinymls_context_export; format in docs/STATE.md): mode, group
// id, configuration, the retained epochs with their ages (only the current
// one with ExportCurrentEpochOnly) and the replay windows of the senders it
// knows. The context carries on unchanged.
//
// The blob holds epoch keys, sealed: whoever has it and kek can read every
// message of the epochs it carries (and, for a shared context, of later
// ones). Keep kek away from the blob's store and delete blobs you no longer
// need.
//
// Errors: ErrInvalidArgument (kek not KEKLen bytes, an unknown flag),
// ErrClosed, ErrExhausted, ErrRNG, ErrInternal.
func (c *Context) Export(kek []byte, flags ExportFlags) ([]byte, error) {
	h, err := c.handle()
	if err != nil {
		return nil, err
	}
	blob, err := readSized(func(buf []byte) (C.tinymls_go_result, C.size_t) {
		var n C.size_t
		r := C.tinymls_go_context_export(h, bytePtr(kek), C.size_t(len(kek)), C.uint32_t(flags),
			bytePtr(buf), C.size_t(len(buf)), &n)
		return r, n
	})
	runtime.KeepAlive(c)
	if err == nil && len(blob) == 0 {
		return nil, ErrInternal // a blob is never empty
	}
	return blob, err
}

// Import restores a context from a blob of Export sealed under kek
// (tinymls_context_import). cfg nil keeps the exported configuration;
// otherwise it is validated and used. The new context draws a new sender id
// and fresh sequence numbers (it never reuses a nonce, even if the exporter
// still runs); epochs keep their ages, and one past Config.StateLifetime is
// destroyed before Import returns. Release it with Close.
//
// Errors: ErrInvalidArgument (kek not KEKLen bytes), ErrInvalidConfig,
// ErrMalformed (not a state blob: truncated, foreign, or a newer format
// version), ErrState (wrong kek or a tampered blob), ErrRNG, ErrExhausted,
// ErrInternal, ErrIncompatibleLibrary. On error no context exists.
func Import(blob, kek []byte, cfg *Config) (*Context, error) {
	return importState(blob, kek, cfg, nil)
}

// ImportMinGeneration is Import that also refuses an authentic blob whose
// generation (see ReadStateInfo) is below minGeneration, with ErrState: an
// older blob put back in place of a newer one (tinymls_context_import_min_generation;
// docs/STATE.md, "Rollback"). Pass the highest generation you recorded
// where the blob store's writer cannot roll it back; 0 accepts any blob.
func ImportMinGeneration(blob, kek []byte, cfg *Config, minGeneration uint64) (*Context, error) {
	return importState(blob, kek, cfg, &minGeneration)
}

func importState(blob, kek []byte, cfg *Config, minGeneration *uint64) (*Context, error) {
	var cc C.tinymls_config
	pcc, err := cfg.forCreate(&cc)
	if err != nil {
		return nil, err
	}
	var h *C.tinymls_context
	var r C.tinymls_go_result
	if minGeneration == nil {
		r = C.tinymls_go_context_import(bytePtr(blob), C.size_t(len(blob)), bytePtr(kek), C.size_t(len(kek)), pcc, &h)
	} else {
		r = C.tinymls_go_context_import_min_generation(bytePtr(blob), C.size_t(len(blob)), bytePtr(kek),
			C.size_t(len(kek)), pcc, C.uint64_t(*minGeneration), &h)
	}
	runtime.KeepAlive(blob)
	runtime.KeepAlive(kek)
	runtime.KeepAlive(&cc)
	if err := cfg.configError(resultError(r)); err != nil {
		return nil, err
	}
	return newContext(h), nil
}

// StateInfo is what ReadStateInfo reads from an authentic state blob
// (docs/STATE.md, "Rollback"). No secret in it.
type StateInfo struct {
	// ExportedAtMs is the exporter's wall clock at the export, milliseconds
	// since the Unix epoch.
	ExportedAtMs uint64
	// Generation increases strictly along one lineage of exports and
	// imports (0 for a blob written without one).
	Generation uint64
}

// ReadStateInfo authenticates blob under kek as Import would and returns its
// export time and generation, without importing it (tinymls_state_get_info).
// Compare the generation with the highest one you recorded where the blob
// store's writer cannot roll it back.
//
// Errors: ErrInvalidArgument (kek not KEKLen bytes), ErrMalformed, ErrState
// (wrong kek or a tampered blob), ErrInternal, ErrIncompatibleLibrary (the
// info struct is the ABI's).
func ReadStateInfo(blob, kek []byte) (StateInfo, error) {
	if err := checkABI(); err != nil {
		return StateInfo{}, err
	}
	var info C.tinymls_state_info
	r := C.tinymls_go_state_get_info(bytePtr(blob), C.size_t(len(blob)), bytePtr(kek), C.size_t(len(kek)), &info)
	runtime.KeepAlive(blob)
	runtime.KeepAlive(kek)
	if err := resultError(r); err != nil {
		return StateInfo{}, err
	}
	return StateInfo{ExportedAtMs: uint64(info.exported_at_ms), Generation: uint64(info.generation)}, nil
}

// StateGeneration returns the context's state generation
// (tinymls_context_state_generation): that of the last blob it exported
// (each Export takes at least one), else that of the blob it was imported
// from, else 0. Errors: ErrClosed.
func (c *Context) StateGeneration() (uint64, error) {
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	var g C.uint64_t
	r := C.tinymls_go_context_state_generation(h, &g)
	runtime.KeepAlive(c)
	if err := resultError(r); err != nil {
		return 0, err
	}
	return uint64(g), nil
}
