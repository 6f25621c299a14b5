<?php
// Shared plumbing for the PHP scenarios: PASS/FAIL lines that run.sh counts, assertions,
// polling with a deadline, and restarting the plain server (see ../lib/server.sh).

$HOST = getenv('HASHD_HOST') ?: '127.0.0.1';
$PORT = (int) (getenv('HASHD_PORT') ?: 6379);
$AUTH_PORT = (int) (getenv('HASHD_AUTH_PORT') ?: 0);
$PASSWORD = getenv('HASHD_PASSWORD') ?: '';
$SUITE_DIR = getenv('HASHD_SUITE_DIR') ?: dirname(__DIR__);

// How long a poll for a field to expire may take before it counts as a failure, in seconds.
const EXPIRY_POLL_S = 3.0;

class CheckFailed extends Exception {}

final class Suite
{
    public int $passed = 0;
    public int $failed = 0;

    public function __construct(public string $name) {}

    public function check(string $name, callable $fn): void
    {
        $t0 = microtime(true);
        try {
            $fn();
            $this->passed++;
            $took = microtime(true) - $t0;
            echo "PASS {$this->name} {$name}" . ($took >= 1 ? sprintf(' (%.1fs)', $took) : '') . "\n";
        } catch (Throwable $e) {
            $this->failed++;
            $why = preg_replace('/\s+/', ' ', $e->getMessage());
            $line = $e->getLine();
            foreach ($e->getTrace() as $frame) {
                if (($frame['file'] ?? '') === realpath($_SERVER['SCRIPT_FILENAME'])) {
                    $line = $frame['line'];
                    break;
                }
            }
            echo "FAIL {$this->name} {$name}: " . get_class($e) . ": {$why} (line {$line})\n";
        }
    }

    public function finish(): void
    {
        exit($this->failed ? 1 : 0);
    }
}

function eq($got, $want, string $what = ''): void
{
    if ($got !== $want) {
        throw new CheckFailed("{$what} expected " . var_export($want, true) . ', got ' . var_export($got, true));
    }
}

function near($got, $want, $tolerance, string $what = ''): void
{
    if (!is_int($got) && !is_float($got) || abs($got - $want) > $tolerance) {
        throw new CheckFailed("{$what} expected {$want} ±{$tolerance}, got " . var_export($got, true));
    }
}

function throws(callable $fn, string $what = ''): Throwable
{
    try {
        $got = $fn();
    } catch (Throwable $e) {
        return $e;
    }
    throw new CheckFailed("{$what}: expected an exception, got " . var_export($got, true));
}

function poll(callable $fn, string $what = 'condition', float $timeout = EXPIRY_POLL_S): void
{
    $deadline = microtime(true) + $timeout;
    while (!$fn()) {
        if (microtime(true) > $deadline) {
            throw new CheckFailed("{$what} not reached within {$timeout}s");
        }
        usleep(20000);
    }
}

function restart_server(string $name = 'plain'): void
{
    global $SUITE_DIR;
    exec(escapeshellarg("{$SUITE_DIR}/lib/server.sh") . ' restart ' . escapeshellarg($name) . ' 2>&1', $out, $rc);
    if ($rc !== 0) {
        throw new CheckFailed("restart failed: " . implode(' ', $out));
    }
}

// 1 MiB covering every byte value, so binary safety is tested too.
function one_mib(): string
{
    return str_repeat(implode('', array_map('chr', range(0, 255))), 4096);
}
