// Command ferretdb-test-server runs FerretDB v1 embedded with its SQLite
// handler, so the test suite has a real MongoDB wire-protocol server on
// loopback without Docker or a MongoDB install.
//
// Usage: ferretdb-test-server -listen 127.0.0.1:0 -data DIR
// It prints the MongoDB URI on stdout once the listener is up and runs until
// SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on (port 0 picks a free one)")
	dataDir := flag.String("data", "", "directory for the SQLite files (required)")
	postgresURL := flag.String("postgresql-url", "", "use the PostgreSQL handler with this URL instead of SQLite (benchmarks)")
	durable := flag.Bool("durable", false, "fsync every commit (SQLite synchronous=FULL); off by default: test data is throwaway")
	flag.Parse()
	if *dataDir == "" && *postgresURL == "" {
		log.Fatal("-data (SQLite) or -postgresql-url is required")
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	config := &ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL(*dataDir, *durable),
	}
	if *postgresURL != "" {
		config.Handler = "postgresql"
		config.PostgreSQLURL = *postgresURL
		config.SQLiteURL = ""
	}
	f, err := ferretdb.New(config)
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// ferretdb.New binds the listener, so with port 0 this URI already names
	// the port the kernel picked; the test fixture reads it from our stdout.
	fmt.Println(f.MongoDBURI())
	if err := <-done; err != nil {
		log.Fatal(err)
	}
}

// sqliteURL names the data directory. Unless durable, commits skip fsync:
// FerretDB writes each updated document in its own transaction, and with an
// fsync per commit a test server manages only a few dozen updates a second.
func sqliteURL(dir string, durable bool) string {
	u := "file:" + dir + "/"
	if !durable {
		u += "?_pragma=synchronous(off)"
	}
	return u
}
