// Starting an external program with pipes on its standard input and output (ExternalProgram.swift).
#ifndef CSPAWN_H
#define CSPAWN_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Starts `argv[0]` (a path, or a name found on PATH; argv NULL-terminated) in a process group of its own, with pipes on its stdin and
/// stdout (stderr is ours), every other descriptor closed and default signal dispositions and an empty signal mask.
/// On success returns 0 and sets *pid, *stdin_fd (write end) and *stdout_fd (read end), both non-blocking and
/// close-on-exec; otherwise returns an errno value and leaves nothing open.
int glms_spawn(char *const argv[], pid_t *pid, int *stdin_fd, int *stdout_fd);

#ifdef __cplusplus
}
#endif

#endif
