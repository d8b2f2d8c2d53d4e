#ifndef FUZZ_JANUS_H
#define FUZZ_JANUS_H

#include <plugins/plugin.h>

/* the callbacks a Janus core gives the plugin, and the events pushed */
extern janus_callbacks fuzz_janus_callbacks;
extern unsigned long   fuzz_janus_events;

#endif /* FUZZ_JANUS_H */
