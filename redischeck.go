package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// redisSetup is what deskrelay needs of the Redis it talks to and what it
// saw: Redis must not evict keys (maxmemory-policy noeviction), and in
// production should persist every write (appendonly yes). It reads INFO
// only: managed Redis often refuses CONFIG GET.
type redisSetup struct {
	MaxmemoryPolicy string   `json:"maxmemory_policy,omitempty"`
	AOFEnabled      *bool    `json:"aof_enabled,omitempty"`
	Warnings        []string `json:"warnings,omitempty"`
	Error           string   `json:"error,omitempty"` // INFO failed: nothing known
}

// checkRedisSetup asks Redis (INFO memory, persistence) how it is set up:
// on a Redis Cluster, every master (INFO answers for one node only).
func checkRedisSetup(ctx context.Context, rdb redis.UniversalClient) redisSetup {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		info, err := rdb.Info(ctx, "memory", "persistence").Result()
		if err != nil {
			return redisSetup{Error: "INFO: " + err.Error()}
		}
		return parseRedisSetup(info)
	}
	var mu sync.Mutex
	var infos []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "memory", "persistence").Result()
		if err != nil {
			return fmt.Errorf("master %s: %w", c.Options().Addr, err)
		}
		mu.Lock()
		defer mu.Unlock()
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		return redisSetup{Error: "INFO: " + err.Error()}
	}
	return parseRedisSetup(infos...)
}

// parseRedisSetup reads INFO's answers, one per master: the setup is as
// weak as its weakest master.
func parseRedisSetup(infos ...string) redisSetup {
	var s redisSetup
	for _, info := range infos {
		one := parseOneSetup(info)
		if s.MaxmemoryPolicy == "" || s.MaxmemoryPolicy == "noeviction" {
			s.MaxmemoryPolicy = one.MaxmemoryPolicy
		}
		if one.AOFEnabled != nil && (s.AOFEnabled == nil || *s.AOFEnabled) {
			s.AOFEnabled = one.AOFEnabled
		}
	}
	if s.MaxmemoryPolicy != "" && s.MaxmemoryPolicy != "noeviction" {
		s.Warnings = append(s.Warnings, "Redis evicts keys (maxmemory-policy "+s.MaxmemoryPolicy+
			"): messages, queues and records can vanish under memory pressure; set maxmemory-policy noeviction")
	}
	if s.AOFEnabled != nil && !*s.AOFEnabled {
		s.Warnings = append(s.Warnings, "Redis has no append-only file (appendonly no): a Redis restart loses what was written since its last snapshot; set appendonly yes in production")
	}
	return s
}

// parseOneSetup reads one INFO answer.
func parseOneSetup(info string) redisSetup {
	var s redisSetup
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch k {
		case "maxmemory_policy":
			s.MaxmemoryPolicy = v
		case "aof_enabled":
			on := v == "1"
			s.AOFEnabled = &on
		}
	}
	return s
}

// warnRedisSetup logs each problem of the Redis setup (serve, at start).
func warnRedisSetup(ctx context.Context, rdb redis.UniversalClient, log zerolog.Logger) {
	s := checkRedisSetup(ctx, rdb)
	if s.Error != "" {
		log.Info().Str("error", s.Error).Msg("cannot read the Redis setup (INFO); eviction and persistence unchecked")
	}
	for _, w := range s.Warnings {
		log.Warn().Msg(w)
	}
}
