// Command imageprogs is the one static program inside the images the test node builds.
// It picks its job from argv[0] (or argv[1]):
//
//	pause            wait for SIGTERM/SIGINT, reap children (a pod sandbox's init process)
//	echo [addr]      HTTP server (default :8080): GET / answers "<hostname> <path>", /healthz "ok";
//	                 it prints one log line per request and exits 0 on SIGTERM
//	crash            print a few lines and exit 3 (for tests of crashing pods)
//	get URL          HTTP GET, print the status and body; exit 1 on any error
//	lookup NAME      resolve NAME with the pod's resolver, print the addresses; exit 1 on any error
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	name, args := filepath.Base(os.Args[0]), os.Args[1:]
	if name == "imageprogs" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	switch name {
	case "pause":
		pause()
	case "echo":
		addr := ":8080"
		if len(args) > 0 {
			addr = args[0]
		}
		echo(addr)
	case "crash":
		for i := 1; i <= 3; i++ {
			fmt.Printf("crash: line %d before exiting\n", i)
		}
		os.Exit(3)
	case "get":
		get(args[0])
	case "lookup":
		lookup(args[0])
	default:
		fmt.Fprintln(os.Stderr, "usage: imageprogs {pause|echo [addr]|crash|get URL|lookup NAME}")
		os.Exit(2)
	}
}

func pause() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

func echo(addr string) {
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("echo: %s %s from %s\n", r.Method, r.URL.Path, r.RemoteAddr)
		fmt.Fprintf(w, "%s %s\n", host, r.URL.Path)
	})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-stop; os.Exit(0) }()
	fmt.Printf("echo: listening on %s\n", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func get(url string) {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Println("get: error:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("get: %d %s", resp.StatusCode, body)
}

func lookup(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		fmt.Println("lookup: error:", err)
		os.Exit(1)
	}
	fmt.Println("lookup:", name, addrs)
}
