package moat

import (
	"fmt"
	"strconv"
)

// Level is a log level of the ABI's log host function.
type Level int32

const (
	// LevelDebug lines are dropped unless the broker logs at debug.
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// The formatting helpers below cost every module about 140 KB of fmt (of
// about 2.3 MB for the smallest module, most of it the Go runtime); Log
// formats nothing.

// Debugf logs a debug line, formatted as fmt.Sprintf does.
func Debugf(format string, args ...any) { Log(LevelDebug, fmt.Sprintf(format, args...)) }

// Infof logs an info line, formatted as fmt.Sprintf does.
func Infof(format string, args ...any) { Log(LevelInfo, fmt.Sprintf(format, args...)) }

// Warnf logs a warning, formatted as fmt.Sprintf does.
func Warnf(format string, args ...any) { Log(LevelWarn, fmt.Sprintf(format, args...)) }

// Errorf logs an error line, formatted as fmt.Sprintf does.
func Errorf(format string, args ...any) { Log(LevelError, fmt.Sprintf(format, args...)) }

// String returns the level's name.
func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}
