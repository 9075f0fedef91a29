/*
 * The stop signals of a long-running command: SIGINT and SIGTERM ask it to
 * stop at its next safe point.  Only a command calls sig_catch_stop (a
 * library never installs a handler); its loops, and the libraries it hands
 * sig_stopping to, then ask.
 */
#ifndef AISTACK_SIG_H
#define AISTACK_SIG_H

/*
 * Catch SIGINT and SIGTERM without SA_RESTART, so that a wait (a nap, a
 * poll, a blocking read) ends at once and the loop sees sig_stopping.
 */
void sig_catch_stop(void);

/* Nonzero once SIGINT or SIGTERM has come. */
int sig_stopping(void);

#endif
