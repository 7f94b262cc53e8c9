-- Entrants and drawn order, read together. KEYS: entrants, order
return {redis.call('HKEYS', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
