package tinymls

/*
#include <stdint.h>
#include "tinymls.h"
#include "tinymls_go.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"
)

// Config mirrors the C struct tinymls_config (SPEC.md section 7). Start from
// DefaultConfig and change what you need; New and Join copy it and the
// library validates every field, returning ErrInvalidConfig for one out of
// range (an *Error whose detail names it: "max_epochs must be 1..=4096, got
// 0"). A Config{} literal is not valid: most fields need a value, and the
// error then says to start from DefaultConfig. A nil *Config means the
// defaults.
//
// Times are time.Duration values; the library counts whole milliseconds, so
// a negative duration, or one that is not a whole number of milliseconds
// (say 1500 * time.Microsecond), is refused with an error that wraps
// ErrInvalidConfig and names the field, rather than silently rounded.
type Config struct {
	// KeySize is the AES key size in bytes. Must be 32 (256-bit keys only).
	KeySize uint32
	// NonceSize is the AEAD nonce size in bytes. Must be 12.
	NonceSize uint32
	// RatchetPeriod: rotate this often; 0 turns periodic rotation off.
	// Default 100ms. In a shared group it is part of the group: with a
	// period, epochs follow the wall clock, floor(unix time / period), so
	// every member agrees on the current epoch without talking to the
	// others (SPEC v2 section 7.2); with 0, a shared context starts at
	// epoch 0 and adopts a peer's authenticated later epoch.
	RatchetPeriod time.Duration
	// RotationJitterPct spreads each period by up to +/- this percentage
	// (0..=50; local contexts only). Default 10.
	RotationJitterPct uint32
	// MaxEpochs: retain at most this many epochs, the current one included
	// (1..=4096; at least 2 for a shared group following the clock).
	// Default 64.
	MaxEpochs uint32
	// MaxOperations is the usage limit of one key: each message counts
	// 1 + len/16384, and the context rotates before a message would pass it
	// (a shared group following the clock draws a new sender id instead)
	// (1..=2^23). Default 2^23.
	MaxOperations uint64
	// MaxKeyAge: rotate when the current key is this old (>= 1ms; not
	// applied to a shared group following the clock). Default 24h.
	MaxKeyAge time.Duration
	// MinRotationInterval: Rotate returns ErrRateLimited when called closer
	// than this to the previous rotation (in a shared group following the
	// clock, the previous Rotate: the clock's boundaries do not count).
	// Default 0 (no limit).
	MinRotationInterval time.Duration
	// StateLifetime: destroy every epoch that became current longer ago
	// than this (>= 1ms; more than RatchetPeriod for a shared group
	// following the clock). Default 24h.
	StateLifetime time.Duration
	// GCInterval: how often the library's maintenance thread visits an idle
	// context (>= 1ms). Default 1s.
	GCInterval time.Duration
	// ReplayWindow per sender and epoch (a shared context checks its own id
	// too, a local one only others'): 0 (off) or a multiple of
	// 64 up to 4096. Default 128.
	ReplayWindow uint32
	// MaxFutureEpochs: how many epochs ahead of its current one a shared
	// (joined) context may read a peer (0..=2^20; at least 1 for a shared
	// group following the clock). Default 1024.
	MaxFutureEpochs uint32
	// MaxSenders: foreign senders accepted per epoch (>= 1). Default 1024.
	MaxSenders uint32
}

// DefaultConfig returns the library's defaults (tinymls_config_default), a
// fresh value the caller owns and may change.
//
// If the loaded library is incompatible with this binding (see New), the C
// struct cannot be read safely: DefaultConfig then returns a zero Config,
// and New and Join report the incompatibility.
func DefaultConfig() *Config {
	if checkABI() != nil {
		return &Config{}
	}
	var cc C.tinymls_config
	C.tinymls_config_default(&cc)
	return configFromC(&cc)
}

// Validate asks the library whether every field is in range
// (tinymls_config_validate) without creating a context. It returns nil, an
// error wrapping ErrInvalidConfig that names the first field out of range,
// its rule and its value (an *Error), or the ABI error of New.
func (cfg *Config) Validate() error {
	if err := checkABI(); err != nil {
		return err
	}
	var cc C.tinymls_config
	if cfg == nil {
		C.tinymls_config_default(&cc)
	} else if err := cfg.toC(&cc); err != nil {
		return err
	}
	err := cfg.configError(resultError(C.tinymls_go_config_validate(&cc)))
	runtime.KeepAlive(&cc)
	return err
}

// startFromDefault is the hint an invalid Config with a zero where every
// valid one has a value gets: a Config{} literal, or one built field by
// field, instead of DefaultConfig with changes.
const startFromDefault = "start from DefaultConfig()"

// configError adds the hint to an ErrInvalidConfig from the library when cfg
// has a zero in a field that must have a value.
func (cfg *Config) configError(err error) error {
	var e *Error
	if cfg == nil || !errors.As(err, &e) || e.Status != ErrInvalidConfig || !cfg.lacksRequired() {
		return err
	}
	return &Error{Status: e.Status, Detail: e.Detail + " (" + startFromDefault + ")"}
}

// lacksRequired reports whether a field that no valid Config leaves at 0 is
// 0.
func (cfg *Config) lacksRequired() bool {
	return cfg.KeySize == 0 || cfg.NonceSize == 0 || cfg.MaxEpochs == 0 || cfg.MaxOperations == 0 ||
		cfg.MaxKeyAge == 0 || cfg.StateLifetime == 0 || cfg.GCInterval == 0 || cfg.MaxSenders == 0
}

// toC fills *out from cfg, refusing durations the library cannot carry.
func (cfg *Config) toC(out *C.tinymls_config) error {
	ms := func(field string, d time.Duration) (C.uint64_t, error) {
		if d < 0 || d%time.Millisecond != 0 {
			// An *Error like the library's, with the field in its detail.
			return 0, &Error{Status: ErrInvalidConfig,
				Detail: fmt.Sprintf("Config.%s = %v is not a whole, non-negative number of milliseconds", field, d)}
		}
		return C.uint64_t(d / time.Millisecond), nil
	}
	var err error
	out.key_size = C.uint32_t(cfg.KeySize)
	out.nonce_size = C.uint32_t(cfg.NonceSize)
	if out.ratchet_period_ms, err = ms("RatchetPeriod", cfg.RatchetPeriod); err != nil {
		return err
	}
	out.rotation_jitter_pct = C.uint32_t(cfg.RotationJitterPct)
	out.max_epochs = C.uint32_t(cfg.MaxEpochs)
	out.max_operations = C.uint64_t(cfg.MaxOperations)
	if out.max_key_age_ms, err = ms("MaxKeyAge", cfg.MaxKeyAge); err != nil {
		return err
	}
	if out.min_rotation_interval_ms, err = ms("MinRotationInterval", cfg.MinRotationInterval); err != nil {
		return err
	}
	if out.state_lifetime_ms, err = ms("StateLifetime", cfg.StateLifetime); err != nil {
		return err
	}
	if out.gc_interval_ms, err = ms("GCInterval", cfg.GCInterval); err != nil {
		return err
	}
	out.replay_window = C.uint32_t(cfg.ReplayWindow)
	out.max_future_epochs = C.uint32_t(cfg.MaxFutureEpochs)
	out.max_senders = C.uint32_t(cfg.MaxSenders)
	return nil
}

// configFromC converts the C struct; a millisecond count beyond what a
// time.Duration holds (about 292 years) saturates.
func configFromC(cc *C.tinymls_config) *Config {
	dur := func(ms C.uint64_t) time.Duration {
		if uint64(ms) > uint64(math.MaxInt64/int64(time.Millisecond)) {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(ms) * time.Millisecond
	}
	return &Config{
		KeySize:             uint32(cc.key_size),
		NonceSize:           uint32(cc.nonce_size),
		RatchetPeriod:       dur(cc.ratchet_period_ms),
		RotationJitterPct:   uint32(cc.rotation_jitter_pct),
		MaxEpochs:           uint32(cc.max_epochs),
		MaxOperations:       uint64(cc.max_operations),
		MaxKeyAge:           dur(cc.max_key_age_ms),
		MinRotationInterval: dur(cc.min_rotation_interval_ms),
		StateLifetime:       dur(cc.state_lifetime_ms),
		GCInterval:          dur(cc.gc_interval_ms),
		ReplayWindow:        uint32(cc.replay_window),
		MaxFutureEpochs:     uint32(cc.max_future_epochs),
		MaxSenders:          uint32(cc.max_senders),
	}
}
