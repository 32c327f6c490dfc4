import { flag, parse } from './args.js';
import { EXIT, EXIT_CODE_HELP } from './exit-codes.js';
import { followJob } from './follow.js';
import { ApiClient, CliError, UsageError, clientConfig } from './http.js';
import { JOB_COMMANDS, timeoutField } from './job-commands.js';
import { jobsCommand } from './jobs-command.js';
import { processOutput, type Output } from './terminal.js';

export const CLIENT_COMMANDS = new Set([...Object.keys(JOB_COMMANDS), 'jobs']);

export const CLIENT_HELP = `client commands (talk to a running server: STEVEDORE_URL, default
http://127.0.0.1:8080, and STEVEDORE_TOKEN, an admin token or stvk_ API key; without
it, <STEVEDORE_STATE_DIR>/admin-token when readable):
  build [DIR] -t REF   build DIR with BuildKit, live step progress as buildx prints it
  scan IMAGE           Trivy findings as a severity table, gated by --max-* / --policy
  inspect IMAGE        digest, platforms, size, config and layers
  optimize [FILE|DIR]  Dockerfile rules and layer analysis (--image IMAGE)
  push IMAGE DEST...   copy an image with its signatures
  sign IMAGE           sign by digest with a server-side cosign key
  verify IMAGE         check the signature
  jobs list|get|watch|cancel
Each takes --json (the final job record on stdout, no progress), --no-wait (print the
job id and exit) and --help. Progress goes to stderr, results to stdout.

${EXIT_CODE_HELP}`;

/** Runs one client command; resolves to the process exit code. */
export async function runClient(
  command: string,
  argv: string[],
  io: Output = processOutput(),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  try {
    if (command === 'jobs') {
      return await jobsCommand(argv, (url) => new ApiClient(clientConfig(env, url)), io);
    }
    const spec = JOB_COMMANDS[command];
    if (!spec) throw new CliError(`unknown command ${JSON.stringify(command)}`, EXIT.USAGE);
    const { values, positionals } = parse(argv, spec.options);
    if (flag(values, 'help')) {
      io.out(spec.usage);
      return EXIT.OK;
    }
    const client = new ApiClient(clientConfig(env, typeof values.url === 'string' ? values.url : undefined));
    const json = flag(values, 'json');
    const body = { action: spec.action, ...(await spec.request(values, positionals, client)), ...timeoutField(values) };
    const submitted = await client.request<{ id: string; state: string }>('POST', '/v1/jobs', { json: body });
    if (flag(values, 'no-wait')) {
      io.out(json ? JSON.stringify(submitted, null, 2) : submitted.id);
      return EXIT.OK;
    }
    if (!json) io.err(io.paintErr.dim(`job ${submitted.id} (${spec.action})`));
    return await followJob(client, submitted.id, io, { json, after: spec.after ? (result) => spec.after!(values, result) : undefined });
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`stevedore ${command}: ${err.message}`);
      for (const line of err.lines) io.err(line);
      if (err instanceof UsageError) io.err(`see: stevedore ${command} --help`);
      return err.exitCode;
    }
    io.err(`stevedore ${command}: ${(err as Error)?.message ?? String(err)}`);
    return EXIT.JOB_FAILED;
  }
}
