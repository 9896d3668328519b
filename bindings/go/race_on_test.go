//go:build race

package tinymls

// raceEnabled: the race detector is on. sync.Pool then drops items at random
// (by design, to find misuse), so allocation counts are not steady.
const raceEnabled = true
