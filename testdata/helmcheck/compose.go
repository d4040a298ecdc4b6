package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

// runCompose loads a Compose file as `docker compose config` does: the
// Compose specification's schema, interpolation from the environment and
// -env-file, the profiles given, every env_file present, and prints the
// resolved project as JSON.
func runCompose(file string, args []string) error {
	fs := flag.NewFlagSet("compose", flag.ContinueOnError)
	var profiles, envFiles listFlag
	fs.Var(&profiles, "profile", "a `profile` to enable, repeated")
	fs.Var(&envFiles, "env-file", "an environment `file` for interpolation, repeated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithName("connectors"),
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	b, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}
