// A dynamically linked Go program (cgo) for the real-program matrix: 64
// goroutines with allocation, sleeps and forced GCs, so the runtime preempts
// them with SIGURG and runs its handlers on the signal stacks it sets
// (issue 12: "signal 23 received but handler not on signal stack").
package main

// #include <stdlib.h>
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

func spin(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i % 7
	}
	return s
}

func main() {
	C.free(C.malloc(16))
	var wg sync.WaitGroup
	results := make([]int, 64)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			total := 0
			for r := 0; r < 20; r++ {
				buf := make([]byte, 64<<10)
				buf[g] = byte(r)
				total += spin(200000) + int(buf[g])
				if r%5 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			results[g] = total
		}(g)
	}
	for i := 0; i < 10; i++ {
		runtime.GC()
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	sum := 0
	for _, r := range results {
		sum += r
	}
	fmt.Println("goroutines", len(results), "sum", sum)
}
