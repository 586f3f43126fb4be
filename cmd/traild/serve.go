package main

import "context"

// cmdServe runs the node until SIGINT or SIGTERM.
func cmdServe(ctx context.Context, e *env, args []string) error {
	cf := newConfigFlags("serve", e.stderr)
	cf.fs.Usage = settingsUsage(cf.fs, e.stderr, "[settings]")
	cfg, err := cf.parse(args, e.getenv)
	if err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	d, err := startDaemon(ctx, e, cfg, newLogger(e.stderr, cfg))
	if err != nil {
		return err
	}
	return d.run(ctx)
}
