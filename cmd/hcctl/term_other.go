//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import "os"

// windowWidth returns 0: this platform's terminal width is not measured.
func windowWidth(*os.File) int { return 0 }
