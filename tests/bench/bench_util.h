// What both benchmarks measure with: medians of interleaved rounds, on one
// core.
#pragma once

#include <sched.h>

#include <algorithm>
#include <vector>

namespace popguard::bench {

// The middle round (the rounds are odd in number, so it is one round).
inline double Median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Floor and subject rounds must share one core: on a shared VM the cores
// are not equally loaded.
inline void PinToCurrentCpu() {
  cpu_set_t cpu;
  CPU_ZERO(&cpu);
  CPU_SET(sched_getcpu(), &cpu);
  sched_setaffinity(0, sizeof(cpu), &cpu);
}

}  // namespace popguard::bench
