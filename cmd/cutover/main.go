// Command cutover is a zero-downtime blue-green deployment router and
// rollout controller in one binary. See `cutover --help`.
package main

import (
	"context"
	"os"

	"github.com/cutover/cutover/internal/cli"
)

func main() {
	os.Exit(cli.Execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
