// SPDX-License-Identifier: MIT
using Medallion.Threading.Postgres;
using Xunit;

namespace LibWhsem.Tests;

// The connection string a DistributedLock user holds (Npgsql's form) and
// the libpq string libwhsem connects with. No server is needed: a string
// is checked when the semaphore is constructed.
public class PostgresConnectionStringTests
{
    private const string Secret = "sekrit-Pw-7";

    [Theory]
    [InlineData("host=/tmp port=5432 dbname=x")]
    [InlineData("service=whsem_test")]
    [InlineData("host=db.example password='a b;c' user=u")]
    [InlineData("postgresql://u:p@db.example:5433/x?sslmode=require")]
    [InlineData("postgres://db.example/x")]
    public void LibpqFormsPassUnchanged(string libpq)
    {
        Assert.Equal(libpq, PostgresConnectionString.ToLibpq(libpq));
        Assert.Equal(libpq, PostgresConnectionString.ToLibpq("  " + libpq + "\n"));
    }

    [Fact]
    public void ADistributedLockUsersStringIsTranslated()
    {
        Assert.Equal(
            $"host=/tmp port=5432 dbname=x user=u password={Secret} connect_timeout=15 sslmode=require",
            PostgresConnectionString.ToLibpq($"Host=/tmp;Port=5432;Database=x;Username=u;Password={Secret};SSL Mode=Require;Timeout=15"));
    }

    [Fact]
    public void KeywordsAreCaseInsensitiveWithTheirSynonymsAndSpacing()
    {
        var expected = "host=h port=6000 dbname=d user=u password=p passfile=/home/u/.pgpass sslmode=verify-full";
        Assert.Equal(expected, PostgresConnectionString.ToLibpq("SERVER=h;port=6000;DB=d;User ID=u;PWD=p;Passfile=/home/u/.pgpass;SslMode=VerifyFull"));
        Assert.Equal(expected, PostgresConnectionString.ToLibpq("host=h; Port = 6000 ;database=d;UID=u;psw=p;passfile=/home/u/.pgpass;ssl mode=verify-full;"));
    }

    [Fact]
    public void EqualSettingsInAnyOrderGiveOneString()
    {
        // One string is one server (one set of connections) per process.
        Assert.Equal(
            PostgresConnectionString.ToLibpq("Host=h;Username=u;Database=d"),
            PostgresConnectionString.ToLibpq("Database=d;Host=h;User Id=u"));
    }

    [Theory]
    [InlineData("Password=\"it's a \\ pass\"", @"password='it\'s a \\ pass'")]
    [InlineData("Password='semi;colon=x'", "password='semi;colon=x'")]
    [InlineData("Password=\"\"", "password=''")]
    [InlineData("Host='/run/my sockets'", "host='/run/my sockets'")]
    public void ValuesAreQuotedForLibpq(string npgsql, string libpq) =>
        Assert.Equal(libpq, PostgresConnectionString.ToLibpq(npgsql));

    [Fact]
    public void SeveralHostsWithTheirPortsBecomeLibpqsTwoLists()
    {
        Assert.Equal("host=a,b,::1 port=5433,7000,6000", PostgresConnectionString.ToLibpq("Host=a:5433,b,[::1]:6000;Port=7000"));
        Assert.Equal("host=a,b port=5433,5432", PostgresConnectionString.ToLibpq("Host=a:5433, b"));
        Assert.Equal("host=a,b port=7000", PostgresConnectionString.ToLibpq("Host=a,b;Port=7000"));
        Assert.Equal("host=fe80::1", PostgresConnectionString.ToLibpq("Host=fe80::1"));
    }

    [Theory]
    [InlineData("Disable", "disable")]
    [InlineData("allow", "allow")]
    [InlineData("Prefer", "prefer")]
    [InlineData("VerifyCA", "verify-ca")]
    [InlineData("verify-full", "verify-full")]
    public void SslModesMapToLibpqs(string npgsql, string libpq) =>
        Assert.Equal($"host=h sslmode={libpq}", PostgresConnectionString.ToLibpq($"Host=h;SSL Mode={npgsql}"));

    [Fact]
    public void TheOtherSecurityKeywordsAreTranslated()
    {
        Assert.Equal(
            "host=h sslrootcert=/ca.pem sslcert=/c.pem sslkey=/c.key sslpassword=k krbsrvname=pg gssencmode=disable channel_binding=require target_session_attrs=read-write load_balance_hosts=random",
            PostgresConnectionString.ToLibpq(
                "Host=h;Root Certificate=/ca.pem;SSL Certificate=/c.pem;SSL Key=/c.key;SSL Password=k;Kerberos Service Name=pg;" +
                "GSS Encryption Mode=Disable;Channel Binding=Require;Target Session Attributes=read-write;Load Balance Hosts=true"));
    }

    [Fact]
    public void NpgsqlsOwnClientSettingsAndApplicationNameAreDropped()
    {
        Assert.Equal("host=h user=u", PostgresConnectionString.ToLibpq(
            "Host=h;Username=u;Application Name=my app;Pooling=true;Maximum Pool Size=50;Command Timeout=30;Keepalive=10;" +
            "Include Error Detail=true;Trust Server Certificate=true;Check Certificate Revocation=false;Multiplexing=false;Search Path=x"));
    }

    [Theory]
    [InlineData("Options=-c statement_timeout=1000", "Options")]
    [InlineData("Check Certificate Revocation=true", "Check Certificate Revocation")]
    [InlineData("Target Session Attributes=prefer-primary", "Target Session Attributes")]
    [InlineData("SSL Mode=Sometimes", "SSL Mode")]
    [InlineData("Frobnicate=1", "Frobnicate")]
    [InlineData("Port=0", "Port")]
    [InlineData("Timeout=soon", "Timeout")]
    [InlineData("Server=other", "Server")]
    [InlineData("Load Balance Hosts=maybe", "Load Balance Hosts")]
    public void WhatCannotBeHonouredIsRefusedByNameWithoutThePassword(string setting, string key)
    {
        var e = Assert.Throws<ArgumentException>(() => PostgresConnectionString.ToLibpq($"Host=h;Password={Secret};{setting}"));
        Assert.Contains($"'{key}'", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Secret, e.Message, StringComparison.Ordinal);
        Assert.Equal("connectionString", e.ParamName);
    }

    [Theory]
    [InlineData("Password=" + Secret + ";Oops")]
    [InlineData("Password=\"" + Secret)]
    [InlineData("Application Name=x")]
    public void AStringThatIsNoneOfTheFormsIsRefusedWithoutThePassword(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => PostgresConnectionString.ToLibpq(text));
        Assert.DoesNotContain(Secret, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyNullAndNulAreRefusedByTheConstructors()
    {
        Assert.Throws<ArgumentNullException>("connectionString", () => new PostgresDistributedSemaphore("a", 1, null!));
        Assert.Throws<ArgumentException>("connectionString", () => new PostgresDistributedSemaphore("a", 1, ""));
        Assert.Throws<ArgumentException>("connectionString", () => new PostgresDistributedSemaphore("a", 1, "  "));
        Assert.Throws<ArgumentException>("connectionString", () => new PostgresDistributedSemaphore("a", 1, "host=h\0x"));
        Assert.Throws<ArgumentException>("connectionString", () => new PostgresDistributedSemaphoreProvider("Frobnicate=1"));
    }

    [Fact]
    public void TheConstructorsCheckTheirOtherArguments()
    {
        Assert.Throws<ArgumentNullException>("name", () => new PostgresDistributedSemaphore(null!, 1, "host=h"));
        Assert.Throws<ArgumentOutOfRangeException>("maxCount", () => new PostgresDistributedSemaphore("a", 0, "host=h"));
        Assert.Throws<ArgumentOutOfRangeException>("connectionCheckCadence", () => new PostgresDistributedSemaphore("a", 1, "host=h", TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>("connectionCheckCadence", () => new PostgresDistributedSemaphore("a", 1, "host=h", TimeSpan.FromSeconds(-3)));
        Assert.Throws<ArgumentOutOfRangeException>("connectionCheckCadence", () => new PostgresDistributedSemaphoreProvider("host=h", TimeSpan.Zero));
        Assert.Throws<FormatException>(() => new PostgresDistributedSemaphore("no-prefix", 1, "host=h", exactName: true));
        _ = new PostgresDistributedSemaphore("a", 1, "host=h", Timeout.InfiniteTimeSpan);

        // Names are finalized as in every binding, and as WaitHandleDistributedSemaphore does.
        Assert.Equal(@"Global\abc", new PostgresDistributedSemaphore("abc", 1, "host=h").Name);
        Assert.Equal(
            new Medallion.Threading.WaitHandles.WaitHandleDistributedSemaphore("", 1).Name,
            new PostgresDistributedSemaphoreProvider("Host=h").CreateSemaphore("", 3).Name);
        Assert.Equal(3, new PostgresDistributedSemaphoreProvider("Host=h").CreateSemaphore("x", 3).MaxCount);
    }
}
