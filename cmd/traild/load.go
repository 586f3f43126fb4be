package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
)

// Sources of a setting, from weakest to strongest.
const (
	sourceDefault = "default"
	sourceFile    = "file"
	sourceEnv     = "env"
	sourceFlag    = "flag"
)

// configEnv names the environment variable that may name the config file.
const configEnv = "TRAIL_CONFIG"

// configFlags parses a command's arguments: every setting as a flag, plus
// --config and whatever flags the command adds itself.
type configFlags struct {
	fs     *flag.FlagSet
	all    []setting
	config string
	// flags holds each setting flag as given, in command-line order; they
	// are applied after the file and the environment, so they win.
	flags []flagRecord
}

type flagRecord struct{ key, text string }

// recorder is the flag.Value of a setting: it only remembers the text.
type recorder struct {
	key    string
	bool   bool
	record *[]flagRecord
}

func (r recorder) Set(text string) error {
	*r.record = append(*r.record, flagRecord{r.key, text})
	return nil
}
func (r recorder) String() string   { return "" }
func (r recorder) IsBoolFlag() bool { return r.bool }

func newConfigFlags(name string, stderr io.Writer) *configFlags {
	cf := &configFlags{fs: flag.NewFlagSet("traild "+name, flag.ContinueOnError), all: settings()}
	cf.fs.SetOutput(stderr)
	cf.fs.StringVar(&cf.config, "config", "", "YAML configuration `FILE` (default $"+configEnv+")")
	probe := new(Config)
	for _, s := range cf.all {
		cf.fs.Var(recorder{key: s.key, bool: s.isBool(probe), record: &cf.flags}, s.flagName(), s.help)
	}
	return cf
}

// parse parses args and loads the configuration: defaults, then the file,
// then the environment, then the flags. Positional arguments are refused.
func (cf *configFlags) parse(args []string, getenv func(string) string) (*Config, error) {
	if err := cf.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err.Error()}
	}
	if cf.fs.NArg() > 0 {
		return nil, usageErrorf("unexpected argument %q", cf.fs.Arg(0))
	}
	path := cf.config
	if path == "" {
		path = getenv(configEnv)
	}
	return loadConfig(cf.all, path, getenv, cf.flags)
}

// loadConfig builds a Config from the sources in order of precedence.
func loadConfig(all []setting, path string, getenv func(string) string, flags []flagRecord) (*Config, error) {
	c := &Config{set: make(map[string]string)}
	for _, s := range all {
		if s.def == "" {
			continue
		}
		if err := s.field(c).Set(s.def); err != nil {
			// A bad default is a bug in settings(), not a user error.
			panic(fmt.Sprintf("traild: default of %s: %v", s.key, err))
		}
	}
	if path != "" {
		vals, err := readConfigFile(path, all)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			s, _ := lookupSetting(all, v.key)
			if err := c.apply(s, v.text, sourceFile); err != nil {
				return nil, fmt.Errorf("config file %s:%d: %s: %w", path, v.line, v.key, err)
			}
		}
	}
	for _, s := range all {
		// An empty variable counts as unset: Compose and shells produce
		// them for anything interpolated but not defined.
		if text := getenv(s.envName()); text != "" {
			if err := c.apply(s, text, sourceEnv); err != nil {
				return nil, fmt.Errorf("$%s: %w", s.envName(), err)
			}
		}
	}
	for _, f := range flags {
		s, _ := lookupSetting(all, f.key)
		if err := c.apply(s, f.text, sourceFlag); err != nil {
			return nil, usageErrorf("--%s: %v", s.flagName(), err)
		}
	}
	return c, nil
}

func (c *Config) apply(s setting, text, source string) error {
	if err := s.field(c).Set(text); err != nil {
		return err
	}
	c.set[s.key] = source
	return nil
}

// source reports where the setting with file key key came from.
func (c *Config) source(key string) string {
	if src, ok := c.set[key]; ok {
		return src
	}
	return sourceDefault
}

// printSettingsUsage lists the settings under a command's own usage.
func printSettingsUsage(w io.Writer) {
	fmt.Fprintln(w, "\nSettings (flag, environment variable; see cmd/traild/README.md for the file keys):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range settings() {
		def := s.defaultDoc()
		if def != "" {
			def = " (default " + def + ")"
		}
		fmt.Fprintf(tw, "  --%s\t$%s\t%s%s\n", s.flagName(), s.envName(), s.help, def)
	}
	tw.Flush()
}
